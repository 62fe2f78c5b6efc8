import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareByKey, compareCodePoints, compareInstants, isDateTime, parseInstant, pointerGet } from './index.ts';

test('order - text compares by code point like COLLATE "C", not by UTF-16 unit', () => {
  const sorted = ['b', '\u{1F600}', 'a', '\uFF5E', 'B', 'ab', ''].sort(compareCodePoints);
  assert.deepEqual(sorted, ['', 'B', 'a', 'ab', 'b', '\uFF5E', '\u{1F600}']);
  const bytes = (s: string) => Buffer.from(s, 'utf8');
  for (const a of sorted) for (const b of sorted) assert.equal(Math.sign(compareCodePoints(a, b)), Math.sign(Buffer.compare(bytes(a), bytes(b))));
});

test('order - date-times compare as instants across offsets and sub-millisecond digits', () => {
  assert.equal(compareInstants('2021-01-01T00:00:00-04:00', '2021-01-01T04:00:00Z'), 0);
  assert.ok(compareInstants('2021-01-01T00:00:00-04:00', '2021-01-01T03:59:59Z') > 0);
  assert.ok(compareInstants('2021-01-01T00:00:00.0001Z', '2021-01-01T00:00:00Z') > 0);
  assert.equal(compareInstants('2021-01-01T00:00:00.5Z', '2021-01-01T00:00:00.500Z'), 0);
  assert.throws(() => compareInstants('yesterday', '2021-01-01T00:00:00Z'), /RFC 3339/);
});

test('order - date-times of one precision and zone (compared by their digits) order as their parsed instants', () => {
  let seed = 7;
  const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const two = (n: number) => String(n).padStart(2, '0');
  const stamp = () =>
    `20${two(random(3) + 20)}-${two(random(12) + 1)}-${two(random(28) + 1)}${'Tt '[random(3)]}${two(random(24))}:${two(random(60))}:${two(random(61))}` +
    `${['', '.5', '.123', '.123456'][random(4)]}${['Z', 'z', '-04:00', '+05:30', '+00:00'][random(5)]}`;
  const slow = (a: string, b: string) => {
    const x = parseInstant(a);
    const y = parseInstant(b);
    return Math.sign(x.ms - y.ms) || Math.sign(x.subMs.padEnd(9, '0').localeCompare(y.subMs.padEnd(9, '0')));
  };
  for (let i = 0; i < 20_000; i++) {
    const a = stamp();
    const b = random(4) === 0 ? a.replace(/(Z|z|[+-]\d\d:\d\d)$/, ['Z', '-04:00'][random(2)]!) : stamp();
    assert.equal(Math.sign(compareInstants(a, b)), slow(a, b), `${a} vs ${b}`);
  }
  // 23:59:60 is the same instant as the next day's 00:00:00 (its digits say otherwise).
  assert.equal(compareInstants('2016-12-31T23:59:60Z', '2017-01-01T00:00:00Z'), 0);
  assert.equal(compareInstants('2016-12-31T19:59:60-04:00', '2016-12-31T20:00:00-04:00'), 0);
  // One length, other zones: `.1234Z` against `+05:30`.
  assert.ok(compareInstants('2021-01-01T00:00:00.1234Z', '2021-01-01T05:30:00+05:30') > 0);
});

test('order - the date-time scanner agrees with the RFC 3339 grammar and its ranges on mutated timestamps', () => {
  const grammar = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
  const reference = (text: string) => {
    const m = grammar.exec(text);
    if (!m) return false;
    const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
    const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
    const days = [0, 31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month] ?? 0;
    if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 60) return false;
    if (m[10] !== undefined && (+m[10] > 23 || +m[11]! > 59)) return false;
    const offset = m[8] ? 0 : (m[9] === '-' ? -1 : 1) * (+m[10]! * 60 + +m[11]!);
    return second < 60 || (((hour * 60 + minute - offset) % 1440) + 1440) % 1440 === 23 * 60 + 59;
  };
  let seed = 11;
  const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const bases = ['2016-12-31T23:59:60Z', '2021-02-28t09:05:07.25-04:30', '2000-02-29 00:00:00+00:00', '2021-01-16T12:34:56.123456789z'];
  const alphabet = '0123456789-:.TtZz+ 9x';
  for (let i = 0; i < 50_000; i++) {
    const chars = [...bases[random(bases.length)]!];
    for (let edits = random(3); edits >= 0; edits--) {
      const at = random(chars.length + 1);
      const action = random(3);
      if (action === 0) chars[at] = alphabet[random(alphabet.length)]!;
      else if (action === 1) chars.splice(at, 1);
      else chars.splice(at, 0, alphabet[random(alphabet.length)]!);
    }
    const text = chars.join('');
    assert.equal(isDateTime(text), reference(text), JSON.stringify(text));
  }
});

test('order - a valid date-time is exactly one that compares: RFC 3339, real days, leap seconds at 23:59 UTC', () => {
  for (const text of ['2021-01-16T12:34:56Z', '2021-01-16t12:34:56.5z', '2021-01-16 12:34:56+05:30', '2020-02-29T00:00:00Z', '2016-12-31T23:59:60Z', '2017-01-01T05:29:60+05:30']) {
    assert.ok(isDateTime(text), text);
    assert.doesNotThrow(() => compareInstants(text, '2021-01-01T00:00:00Z'));
  }
  for (const text of ['2021-01-16T12:34:56', '2021-01-16T12:34:56+05', '2021-01-16T12:34:56+0530', '2021-01-16\u00a012:34:56Z', '2021-02-29T00:00:00Z', '2021-13-01T00:00:00Z', '2021-01-16T24:00:00Z', '2021-01-16T12:34:60Z', '2021-01-16T12:34:56+24:00', '2021-01-16T12:34:56.Z']) {
    assert.ok(!isDateTime(text), text);
  }
});

test('order - keys compare pointer by pointer, numbers numerically', () => {
  const key = ['/segment/vendor', '/segment/name'];
  assert.ok(compareByKey(key, { segment: { vendor: 9, name: 'b' } }, { segment: { vendor: 10, name: 'a' } }) < 0);
  assert.equal(pointerGet({ 'a/b': { '~': 1 } }, '/a~1b/~0'), 1);
});
