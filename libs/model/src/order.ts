// Orders shared by every part of Segment, so memory, NATS and Postgres agree to the last element.

/**
 * Compares strings by Unicode code point, the order of Postgres `COLLATE "C"` on UTF-8.
 * JavaScript's `<` compares UTF-16 units, which puts U+10000.. before U+E000..U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800..DFFF) encode code points above FFFF: move them above E000..FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

// RFC 3339 `date-time` (section 5.6; a space may stand for the `T`). The one grammar of validation
// (the schemas' `date-time` format) and of comparison, so every valid timestamp can be ordered.
const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
const daysInMonth = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const lastMinuteOfDay = 23 * 60 + 59;

/** The value of the two decimal digits at `i`, or NaN. */
function twoDigits(text: string, i: number): number {
  const a = text.charCodeAt(i) - 0x30;
  const b = text.charCodeAt(i + 1) - 0x30;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : NaN;
}

/**
 * Whether `text` is an RFC 3339 date-time (the grammar of `rfc3339` above): a real calendar day,
 * and a leap second only at 23:59:60 UTC. Scanned by hand: every event and derived document has
 * one or two, and the regex took ~0.4 µs a call (7% of the derivation's profile).
 */
export function isDateTime(text: string): boolean {
  const length = text.length;
  if (length < 20) return false;
  const year = twoDigits(text, 0) * 100 + twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const hour = twoDigits(text, 11);
  const minute = twoDigits(text, 14);
  const second = twoDigits(text, 17);
  const separator = text.charCodeAt(10);
  if (text.charCodeAt(4) !== 0x2d || text.charCodeAt(7) !== 0x2d || text.charCodeAt(13) !== 0x3a || text.charCodeAt(16) !== 0x3a) return false;
  if (separator !== 0x54 && separator !== 0x74 && separator !== 0x20) return false;
  // NaN fails every comparison below.
  if (!(year >= 0 && month >= 1 && month <= 12 && day >= 1 && hour <= 23 && minute <= 59 && second <= 60)) return false;
  const leapYear = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leapYear ? 29 : daysInMonth[month]!)) return false;
  let i = 19;
  if (text.charCodeAt(i) === 0x2e) {
    const firstDigit = ++i;
    while (i < length && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
    if (i === firstDigit) return false;
  }
  let offsetMinutes = 0;
  const zone = text.charCodeAt(i);
  if (zone === 0x5a || zone === 0x7a) {
    if (i + 1 !== length) return false;
  } else if (zone === 0x2b || zone === 0x2d) {
    const offsetHours = twoDigits(text, i + 1);
    const offsetMinute = twoDigits(text, i + 4);
    if (i + 6 !== length || text.charCodeAt(i + 3) !== 0x3a || !(offsetHours <= 23 && offsetMinute <= 59)) return false;
    offsetMinutes = (zone === 0x2d ? -1 : 1) * (offsetHours * 60 + offsetMinute);
  } else return false;
  return second < 60 || (((hour * 60 + minute - offsetMinutes) % 1440) + 1440) % 1440 === lastMinuteOfDay;
}

/** An instant as whole epoch milliseconds and the digits of the second's fraction beyond them. */
export interface Instant {
  readonly ms: number;
  readonly subMs: string;
}

/** Parses an RFC 3339 date-time into an instant, keeping precision beyond milliseconds. */
export function parseInstant(text: string): Instant {
  const m = rfc3339.exec(text);
  if (!m) throw new RangeError(`not an RFC 3339 date-time: ${JSON.stringify(text)}`);
  const fraction = m[7] ?? '';
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +fraction.slice(0, 3).padEnd(3, '0'));
  const offsetMinutes = m[8] ? 0 : (m[9] === '-' ? -1 : 1) * (+m[10]! * 60 + +m[11]!);
  return { ms: ms - offsetMinutes * 60_000, subMs: fraction.slice(3).replace(/0+$/, '') };
}

/**
 * Where the zone (`Z` or `±hh:mm`) of a valid date-time without a leap second starts, or -1. Two
 * such strings of one length whose zones read the same have one layout and one offset, so they
 * order as their digits do.
 */
function zoneStart(text: string): number {
  if (text.charCodeAt(17) >= 0x36 || !isDateTime(text)) return -1;
  return (text.charCodeAt(text.length - 1) | 0x20) === 0x7a ? text.length - 1 : text.length - 6;
}

/** Compares two RFC 3339 date-times as instants: `2021-01-01T00:00:00-04:00` equals `2021-01-01T04:00:00Z`. */
export function compareInstants(a: string, b: string): number {
  if (a === b) return 0;
  // Most timestamps share a precision and a zone (UTC, or the sender's local one): their digits
  // compare without parsing (a profile of the derivation had parsing at 2%, the projector at 5%,
  // and its regex matches were 5% of what the derivation allocated).
  if (a.length === b.length) {
    const zone = zoneStart(a);
    if (zone >= 0 && zone === zoneStart(b) && sameZone(a, b, zone)) {
      for (let i = 0; i < zone; i++) {
        if (i === 10) continue;
        const d = a.charCodeAt(i) - b.charCodeAt(i);
        if (d !== 0) return d < 0 ? -1 : 1;
      }
      return 0;
    }
  }
  const x = parseInstant(a);
  const y = parseInstant(b);
  if (x.ms !== y.ms) return x.ms < y.ms ? -1 : 1;
  const width = Math.max(x.subMs.length, y.subMs.length);
  const xs = x.subMs.padEnd(width, '0');
  const ys = y.subMs.padEnd(width, '0');
  return xs < ys ? -1 : xs > ys ? 1 : 0;
}

/** Whether two date-times of one length have the same zone text from `zone` on (`Z` and `z` alike). */
function sameZone(a: string, b: string, zone: number): boolean {
  if (zone === a.length - 1) return true;
  for (let i = zone; i < a.length; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return false;
  return true;
}

/** Compares JSON values: by type (null < boolean < number < string < array < object), then by value. */
export function compareJson(a: unknown, b: unknown): number {
  const ta = jsonTypeRank(a);
  const tb = jsonTypeRank(b);
  if (ta !== tb) return ta - tb;
  switch (ta) {
    case 1:
      return Number(a) - Number(b);
    case 2:
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    case 3:
      return compareCodePoints(a as string, b as string);
    case 4: {
      const x = a as unknown[];
      const y = b as unknown[];
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = compareJson(x[i], y[i]);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case 5: {
      const x = Object.entries(a as object).sort(([k1], [k2]) => compareCodePoints(k1, k2));
      const y = Object.entries(b as object).sort(([k1], [k2]) => compareCodePoints(k1, k2));
      return compareJson(x, y);
    }
    default:
      return 0;
  }
}

function jsonTypeRank(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'boolean') return 1;
  if (typeof value === 'number') return 2;
  if (typeof value === 'string') return 3;
  return Array.isArray(value) ? 4 : 5;
}

/** Reads a JSON pointer (`/segment/vendor`) out of a document; undefined when absent. */
export function pointerGet(document: unknown, pointer: string): unknown {
  let current = document;
  for (const token of compilePointer(pointer)) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[token];
  }
  return current;
}

const compiledPointers = new Map<string, readonly string[]>();

/** Splits a JSON pointer into unescaped tokens (cached: keys are read on every document). */
export function compilePointer(pointer: string): readonly string[] {
  let tokens = compiledPointers.get(pointer);
  if (!tokens) {
    if (pointer !== '' && !pointer.startsWith('/')) throw new Error(`not a JSON pointer: ${pointer}`);
    tokens = pointer === '' ? [] : pointer.slice(1).split('/').map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
    compiledPointers.set(pointer, tokens);
  }
  return tokens;
}

/** Compares two documents by a composite key of JSON pointers, each in JSON order. */
export function compareByKey(key: readonly string[], a: unknown, b: unknown): number {
  for (const pointer of key) {
    const c = compareJson(pointerGet(a, pointer), pointerGet(b, pointer));
    if (c !== 0) return c;
  }
  return 0;
}
