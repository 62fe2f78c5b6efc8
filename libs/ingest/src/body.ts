// Request bodies and WebSocket frames into documents: one JSON document, a JSON array, NDJSON, or
// (WebSocket) a stream of whitespace-separated JSON values. Parsing never throws: a document that
// is not JSON becomes an item with the parser's message, so one bad line is reported by its
// position and the rest of the batch is still checked.
import { isUtf8 } from 'node:buffer';

/** How a body is framed. */
export type BodyFormat = 'json' | 'ndjson';

/** One document of a body or frame, parsed or not: `index` counts documents (0-based), `line` is 1-based (NDJSON). */
export type ParsedItem =
  | {
      readonly index: number;
      readonly line?: number;
      readonly ok: true;
      readonly value: unknown;
      /** NDJSON: the line's own bytes (one JSON text on one line), which a sink may store as they came. */
      readonly source?: Uint8Array;
    }
  | { readonly index: number; readonly line?: number; readonly ok: false; readonly error: string };

/** A body is either a list of items or, for a single JSON text, not JSON at all. */
export type ParsedBody = { ok: true; items: ParsedItem[] } | { ok: false; error: string };

const ndjsonTypes = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonl', 'application/json-lines', 'application/jsonlines']);

/**
 * The framing of a body from its Content-Type: `application/json` (and `+json` types) is one
 * document or an array, the NDJSON/JSON-lines types are NDJSON. Without a content type (or with
 * `text/plain`, what `curl --data-binary` users often end up sending) the body is sniffed: a
 * leading `[` is an array, anything else NDJSON, which also covers a single document on one line.
 * `application/x-www-form-urlencoded` is sniffed too: it is what `curl --data-binary` sends by default.
 * Any other type is undefined (the server answers 415).
 */
export function bodyFormatFor(contentType: string | undefined, body: Uint8Array): BodyFormat | undefined {
  const type = contentType?.split(';', 1)[0]!.trim().toLowerCase() ?? '';
  if (type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))) return 'json';
  if (ndjsonTypes.has(type)) return 'ndjson';
  if (type === '' || type === 'text/plain' || type === 'application/x-www-form-urlencoded') return firstNonSpace(body) === 0x5b /* [ */ ? 'json' : 'ndjson';
  return undefined;
}

/** A body's documents; undefined when the body is not valid UTF-8. A leading byte order mark is skipped. */
export function parseBody(format: BodyFormat, body: Buffer): ParsedBody | undefined {
  if (!isUtf8(body)) return undefined;
  return format === 'json' ? parseJsonBody(body.toString('utf8', bomLength(body))) : { ok: true, items: parseNdjsonBody(body) };
}

/** One JSON text: an array is a batch of documents (one item per element), anything else one document. */
export function parseJsonBody(body: string): ParsedBody {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    // V8 does not always say where ("Unexpected token '}', ... is not valid JSON"): name the element.
    const where = /^[ \t\r\n]*\[/.test(body) ? locateArrayError(body) : undefined;
    return { ok: false, error: `the body is not valid JSON: ${where ?? messageOf(error)}` };
  }
  if (!Array.isArray(value)) return { ok: true, items: [{ index: 0, ok: true, value }] };
  const items = new Array<ParsedItem>(value.length);
  for (let index = 0; index < value.length; index++) items[index] = { index, ok: true, value: value[index] };
  return { ok: true, items };
}

/**
 * NDJSON: one document per line, `JSON.parse` per line (the fastest parser there is in V8), split on
 * the bytes so that each document keeps its line's bytes as `source`: a gateway stores them as they
 * came instead of encoding the document again. Blank lines and a trailing `\r` are tolerated;
 * documents are numbered without the blank lines. The body must be valid UTF-8 (`parseBody` checks).
 */
export function parseNdjsonBody(body: Buffer): ParsedItem[] {
  const items: ParsedItem[] = [];
  let start = bomLength(body);
  let line = 0;
  while (start <= body.length) {
    let end = body.indexOf(0x0a, start);
    if (end === -1) end = body.length;
    line++;
    let stop = end;
    if (stop > start && body[stop - 1] === 0x0d) stop--;
    if (!isBlank(body, start, stop)) {
      const index = items.length;
      try {
        items.push({ index, line, ok: true, value: JSON.parse(body.toString('utf8', start, stop)), source: body.subarray(start, stop) });
      } catch (error) {
        items.push({ index, line, ok: false, error: `line ${line} is not JSON: ${messageOf(error)}` });
      }
    }
    start = end + 1;
  }
  return items;
}

/**
 * A stream of JSON values separated by whitespace (or by nothing, between objects and arrays):
 * what `segment generate | websocat` puts in a frame. Each value is delimited by a scan that only
 * tracks nesting and strings, then handed to `JSON.parse`, so a malformed value is reported by its
 * index and the scan goes on with the next one. An unterminated value takes the rest of the text.
 */
export function parseJsonValues(text: string): ParsedItem[] {
  const items: ParsedItem[] = [];
  const length = text.length;
  let position = 0;
  for (;;) {
    while (position < length && isSpace(text.charCodeAt(position))) position++;
    if (position >= length) return items;
    const start = position;
    const end = valueEnd(text, start);
    position = end;
    const index = items.length;
    try {
      items.push({ index, ok: true, value: JSON.parse(text.slice(start, end)) });
    } catch (error) {
      items.push({ index, ok: false, error: `document ${index} is not JSON: ${messageOf(error)}` });
    }
  }
}

/** The first element of a JSON array text that does not parse, as `element 3 (line 4): <message>`. */
function locateArrayError(body: string): string | undefined {
  const length = body.length;
  let i = body.indexOf('[') + 1;
  for (let index = 0; ; index++) {
    while (i < length && isSpace(body.charCodeAt(i))) i++;
    if (i >= length) return index === 0 ? 'the array is not closed' : `the array is not closed (after element ${index - 1})`;
    if (index === 0 && body.charCodeAt(i) === 0x5d) return undefined;
    const start = i;
    let depth = 0;
    for (; i < length; i++) {
      const c = body.charCodeAt(i);
      if (c === 0x22) i = stringEnd(body, i);
      else if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        if (depth === 0) break;
        depth--;
      } else if (c === 0x2c /* , */ && depth === 0) break;
    }
    try {
      JSON.parse(body.slice(start, i));
    } catch (error) {
      return `element ${index} (line ${lineAt(body, start)}): ${messageOf(error)}`;
    }
    if (i >= length) return `the array is not closed (after element ${index})`;
    if (body.charCodeAt(i) === 0x5d) return undefined; // the elements parse: the problem is after the array
    i++;
  }
}

function lineAt(text: string, position: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < position; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** Where the value starting at `start` ends (exclusive), judged by brackets and strings only. */
function valueEnd(text: string, start: number): number {
  const length = text.length;
  const first = text.charCodeAt(start);
  if (first === 0x22 /* " */) return Math.min(stringEnd(text, start) + 1, length);
  if (first !== 0x7b /* { */ && first !== 0x5b /* [ */) {
    // A scalar (number, true, false, null) or garbage: up to the next space or structural start.
    let i = start + 1;
    while (i < length) {
      const c = text.charCodeAt(i);
      if (isSpace(c) || c === 0x7b || c === 0x5b || c === 0x22) break;
      i++;
    }
    return i;
  }
  let depth = 0;
  for (let i = start; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = stringEnd(text, i);
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      if (--depth === 0) return i + 1;
    }
  }
  return length;
}

/** The index of the quote closing the string opened at `open`, or the last index when unterminated. */
function stringEnd(text: string, open: number): number {
  let quote = text.indexOf('"', open + 1);
  while (quote !== -1) {
    let backslashes = 0;
    for (let j = quote - 1; text.charCodeAt(j) === 0x5c /* \ */; j--) backslashes++;
    if (backslashes % 2 === 0) return quote;
    quote = text.indexOf('"', quote + 1);
  }
  return text.length - 1;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isBlank(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (!isSpace(bytes[i]!)) return false;
  return true;
}

/** 3 when the bytes start with UTF-8's byte order mark, else 0. */
function bomLength(bytes: Uint8Array): number {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
}

function firstNonSpace(bytes: Uint8Array): number | undefined {
  for (let i = bomLength(bytes); i < bytes.length; i++) if (!isSpace(bytes[i]!)) return bytes[i];
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
