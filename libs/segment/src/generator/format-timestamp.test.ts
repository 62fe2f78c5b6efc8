import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTimestamp, localUtcOffsetMinutes, offsetOfTimestamp, tickClock } from './format-timestamp.ts';

const example = Date.parse('2021-03-19T17:32:26.750Z');

test('formatTimestamp - prints local time with the offset, truncated to the second like Go RFC3339', () => {
  assert.equal(formatTimestamp(example, -240), '2021-03-19T13:32:26-04:00');
  assert.equal(formatTimestamp(example, 330), '2021-03-19T23:02:26+05:30');
});

test('formatTimestamp - a zero offset prints Z, as Go Z07:00 does', () => {
  assert.equal(formatTimestamp(example, 0), '2021-03-19T17:32:26Z');
  assert.equal(formatTimestamp(example, -0), '2021-03-19T17:32:26Z');
});

test('formatTimestamp - the offset can move the date, and instants before 1970 truncate downwards', () => {
  assert.equal(formatTimestamp(Date.parse('2021-01-01T02:00:00Z'), -180), '2020-12-31T23:00:00-03:00');
  assert.equal(formatTimestamp(-500, 0), '1969-12-31T23:59:59Z');
});

test('localUtcOffsetMinutes - agrees with Date for this host', () => {
  const offset = localUtcOffsetMinutes(example);
  assert.equal(offset, -new Date(example).getTimezoneOffset() || 0);
  assert.ok(!Object.is(localUtcOffsetMinutes(example), -0));
});

test('offsetOfTimestamp - reads Z and ±hh:mm, and nothing from a time without an offset', () => {
  assert.equal(offsetOfTimestamp('2021-03-19T13:32:26-04:00'), -240);
  assert.equal(offsetOfTimestamp('2021-03-19T13:32:26+05:30'), 330);
  assert.equal(offsetOfTimestamp('2021-03-19T13:32:26Z'), 0);
  assert.equal(offsetOfTimestamp('2021-03-19T13:32:26'), undefined);
});

test('tickClock - starts at the start and advances one tick per call', () => {
  const clock = tickClock(1_000, 250);
  assert.deepEqual([clock(), clock(), clock()], [1_000, 1_250, 1_500]);
});
