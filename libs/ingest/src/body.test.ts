import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyFormatFor, parseBody, parseJsonBody, parseJsonValues, parseNdjsonBody, type ParsedItem } from './body.ts';

const values = (items: ParsedItem[]) => items.map((item) => (item.ok ? item.value : `ERR ${item.error}`));

test('bodyFormatFor - the content type decides, a missing one is sniffed', () => {
  const table: [string | undefined, string, ReturnType<typeof bodyFormatFor>][] = [
    ['application/json', '{"a":1}\n{"a":2}', 'json'],
    ['application/json; charset=utf-8', '[]', 'json'],
    ['application/vnd.segment+json', '{}', 'json'],
    ['application/x-ndjson', '[1]', 'ndjson'],
    ['application/jsonl', '{}', 'ndjson'],
    ['Application/X-NDJSON', '{}', 'ndjson'],
    [undefined, '  \n[{"a":1}]', 'json'],
    [undefined, '\ufeff[{"a":1}]', 'json'],
    [undefined, '{"a":1}', 'ndjson'],
    [undefined, '', 'ndjson'],
    ['text/plain', '[1]', 'json'],
    ['application/x-www-form-urlencoded', '{"a":1}', 'ndjson'],
    ['application/xml', '<a/>', undefined],
    ['multipart/form-data; boundary=x', '', undefined],
  ];
  for (const [type, body, expected] of table) assert.equal(bodyFormatFor(type, Buffer.from(body)), expected, `${type} ${body}`);
});

test('parseJsonBody - an array is a batch, anything else one document, bad JSON fails as a whole', () => {
  assert.deepEqual(parseJsonBody('[{"a":1},{"a":2}]'), { ok: true, items: [{ index: 0, ok: true, value: { a: 1 } }, { index: 1, ok: true, value: { a: 2 } }] });
  assert.deepEqual(parseJsonBody(' {"a":1} '), { ok: true, items: [{ index: 0, ok: true, value: { a: 1 } }] });
  assert.deepEqual(parseJsonBody('[]'), { ok: true, items: [] });
  const bad = parseJsonBody('[{"a":1},\n{"a":}]');
  assert.equal(bad.ok, false);
  assert.match(!bad.ok ? bad.error : '', /^the body is not valid JSON: element 1 \(line 2\)/);
});

test('parseNdjsonBody - one document per line, blank lines and CRLF tolerated, bad lines named', () => {
  const items = parseNdjsonBody(Buffer.from('{"a":1}\r\n\n   \n{"a":2}\nnot json\n{"a":3}'));
  assert.deepEqual(values(items).slice(0, 2), [{ a: 1 }, { a: 2 }]);
  assert.deepEqual(items.map((i) => [i.index, i.line]), [[0, 1], [1, 4], [2, 5], [3, 6]]);
  assert.equal(items[2]!.ok, false);
  assert.match(!items[2]!.ok ? items[2]!.error : '', /^line 5 is not JSON: /);
  assert.deepEqual(values(parseNdjsonBody(Buffer.from(''))), []);
  assert.deepEqual(values(parseNdjsonBody(Buffer.from('{"a":1}\n'))), [{ a: 1 }]);
});

test('parseNdjsonBody - each document keeps the bytes of its line, without the CR, a byte order mark or the newline', () => {
  const lines = ['\ufeff{"a": "é"}', ' {"b":[1, 2]}\t', '{"c":"\\u00e9"}'];
  const items = parseNdjsonBody(Buffer.from(`${lines[0]}\r\n\n${lines[1]}\n${lines[2]}`));
  assert.deepEqual(values(items), [{ a: 'é' }, { b: [1, 2] }, { c: 'é' }]);
  const sources = items.map((item) => (item.ok ? Buffer.from(item.source!).toString('utf8') : ''));
  assert.deepEqual(sources, [lines[0]!.slice(1), lines[1], lines[2]]);
});

test('parseBody - a body that is not UTF-8 is refused; JSON bodies lose a byte order mark and keep no source', () => {
  assert.equal(parseBody('ndjson', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])), undefined);
  assert.equal(parseBody('json', Buffer.from([0xed, 0xa0, 0x80])), undefined, 'an encoded surrogate is not UTF-8');
  assert.deepEqual(parseBody('json', Buffer.from('\ufeff[{"a":1}]')), { ok: true, items: [{ index: 0, ok: true, value: { a: 1 } }] });
});

test('parseJsonValues - whitespace-separated values, several per line, spanning lines', () => {
  const text = '{"a":1} {"a":2}\n{"b":"}{\\"\\\\"}{"c":[1,{"d":2}]}\n  [1,2]\t"s" 12 true null\n{\n  "e": 5\n}';
  assert.deepEqual(values(parseJsonValues(text)), [{ a: 1 }, { a: 2 }, { b: '}{"\\' }, { c: [1, { d: 2 }] }, [1, 2], 's', 12, true, null, { e: 5 }]);
  assert.deepEqual(values(parseJsonValues('')), []);
  assert.deepEqual(values(parseJsonValues(' \n\t ')), []);
});

test('parseJsonValues - a malformed value is reported by index and the scan goes on', () => {
  const items = parseJsonValues('{"a":1} {"a":,} {"a":3} nope {"a":4}');
  assert.deepEqual(items.map((i) => i.ok), [true, false, true, false, true]);
  assert.match(!items[1]!.ok ? items[1]!.error : '', /^document 1 is not JSON/);
  assert.deepEqual(values(items.filter((i) => i.ok)), [{ a: 1 }, { a: 3 }, { a: 4 }]);
  // An unterminated value takes the rest of the frame: it cannot be delimited.
  const open = parseJsonValues('{"a":1} {"a":2 {"a":3}');
  assert.deepEqual(open.map((i) => i.ok), [true, false]);
  const unterminated = parseJsonValues('{"a":1} "abc');
  assert.deepEqual(unterminated.map((i) => i.ok), [true, false]);
});

test('parseJsonBody - a broken array names the element and its line', () => {
  const cases: [string, RegExp][] = [
    ['[{"a":1},\n{"a":}]', /element 1 \(line 2\): /],
    ['[\n{"a":1},\n{"a":2},\n{"a":3]', /element 2 \(line 4\): /],
    ['[{"a":1}, {"a":2}', /the array is not closed \(after element 1\)/],
    ['[{"a":1}] x', /Unexpected non-whitespace|Unexpected token/],
    ['[', /the array is not closed/],
  ];
  for (const [body, message] of cases) {
    const parsed = parseJsonBody(body);
    assert.equal(parsed.ok, false, body);
    assert.match(!parsed.ok ? parsed.error : '', message, body);
  }
});
