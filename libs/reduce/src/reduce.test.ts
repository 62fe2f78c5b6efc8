import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileReduceTree, reduce, reductionOf } from './index.ts';
import { schemaDocuments, schemaOf, type Membership, type Profile, type ToggleRegister } from '@segment/model';

const ts = (day: number, offset = 'Z') => `2021-01-${String(day).padStart(2, '0')}T12:00:00${offset}`;

test('reduce - lastWriteWins is the default everywhere, objects included', () => {
  const schema = { type: 'object', properties: { a: { type: 'object' } } };
  assert.deepEqual(reduce(schema, { a: { x: 1 }, b: 1 }, { a: { y: 2 } }), { a: { y: 2 } });
});

test('reduce - merge keeps left properties absent on the right, and null is a value', () => {
  const schema = { reduce: { strategy: 'merge' } };
  assert.deepEqual(reduce(schema, { a: 1, b: 2, c: 3 }, { b: null, d: 4 }), { a: 1, b: null, c: 3, d: 4 });
});

test('reduce - merge recurses with each property\'s strategy', () => {
  const schema = {
    reduce: { strategy: 'merge' },
    properties: {
      n: { reduce: { strategy: 'sum' } },
      first: { reduce: { strategy: 'firstWriteWins' } },
      list: { reduce: { strategy: 'append' } },
      nested: { reduce: { strategy: 'merge' } },
    },
  };
  assert.deepEqual(
    reduce(schema, { n: 1, first: 'a', list: [1], nested: { x: 1 } }, { n: 2, first: 'b', list: [2], nested: { y: 2 } }),
    { n: 3, first: 'a', list: [1, 2], nested: { x: 1, y: 2 } },
  );
});

test('reduce - minimize and maximize compare date-times as instants and keep the original strings', () => {
  const schema = {
    reduce: { strategy: 'merge' },
    properties: {
      first: { type: 'string', format: 'date-time', reduce: { strategy: 'minimize' } },
      last: { type: 'string', format: 'date-time', reduce: { strategy: 'maximize' } },
    },
  };
  // 09:00-04:00 is 13:00Z: later than 12:00Z though it sorts earlier as text.
  const left = { first: '2021-01-01T09:00:00-04:00', last: '2021-01-01T09:00:00-04:00' };
  const right = { first: '2021-01-01T12:00:00Z', last: '2021-01-01T12:00:00Z' };
  assert.deepEqual(reduce(schema, left, right), { first: '2021-01-01T12:00:00Z', last: '2021-01-01T09:00:00-04:00' });
});

test('reduce - minimize and maximize keep the earlier-written value on a tie', () => {
  const dt = { type: 'string', format: 'date-time' };
  assert.equal(reduce({ ...dt, reduce: { strategy: 'minimize' } }, '2021-01-01T12:00:00Z', '2021-01-01T08:00:00-04:00'), '2021-01-01T12:00:00Z');
  assert.equal(reduce({ ...dt, reduce: { strategy: 'maximize' } }, '2021-01-01T12:00:00Z', '2021-01-01T08:00:00-04:00'), '2021-01-01T12:00:00Z');
  assert.equal(reduce({ ...dt, reduce: { strategy: 'maximize' } }, '2021-01-01T12:00:00.5Z', '2021-01-01T12:00:00.50001Z'), '2021-01-01T12:00:00.50001Z');
});

test('reduce - keyed array merge is a sorted merge with equal keys reduced deeply', () => {
  const schema = {
    reduce: { strategy: 'merge', key: ['/k'] },
    items: { reduce: { strategy: 'merge' }, properties: { n: { reduce: { strategy: 'sum' } } } },
  };
  assert.deepEqual(
    reduce(schema, [{ k: 'a', n: 1 }, { k: 'c', n: 1 }], [{ k: 'b', n: 5 }, { k: 'c', n: 2, z: true }]),
    [{ k: 'a', n: 1 }, { k: 'b', n: 5 }, { k: 'c', n: 3, z: true }],
  );
});

test('reduce - keyed arrays order keys by code point, not UTF-16 units', () => {
  const schema = { reduce: { strategy: 'merge', key: ['/k'] } };
  assert.deepEqual(reduce(schema, [{ k: '\uFF5E' }], [{ k: '\u{1F600}' }]), [{ k: '\uFF5E' }, { k: '\u{1F600}' }]);
});

test('reduce - an unannotated array is replaced; an annotated one without key merges by index', () => {
  assert.deepEqual(reduce({ type: 'array' }, [1, 2], [3]), [3]);
  assert.deepEqual(reduce({ reduce: { strategy: 'merge' }, items: { reduce: { strategy: 'sum' } } }, [1, 2], [3]), [4, 2]);
});

test('reduce - $ref and allOf carry annotations across schema documents', () => {
  const tree = compileReduceTree(schemaOf('membership'), { documents: schemaDocuments });
  assert.equal(tree.strategy, 'merge');
  assert.equal(tree.properties.get('first')?.strategy, 'minimize');
  assert.equal(tree.properties.get('last')?.dateTime, true);
  assert.equal(tree.properties.get('user')?.strategy, 'lastWriteWins');
});

test('reduce - memberships reduce as DESIGN says: first earliest, last latest, member and value last written', () => {
  const reduceMembership = reductionOf('membership');
  const segment = { vendor: 1, name: 's' };
  const details: Membership[] = [
    { segment, user: 'u', first: ts(2), last: ts(2), member: true, value: 'v1' },
    { segment, user: 'u', first: ts(1), last: ts(1), member: true },
    { segment, user: 'u', last: ts(3), member: false },
  ];
  const reduced = details.reduce<Membership | undefined>((acc, d) => reduceMembership(acc, d), undefined);
  assert.deepEqual(reduced, { segment, user: 'u', first: ts(1), last: ts(3), member: false, value: 'v1' });
});

test('reduce - profiles merge segments by (name, vendor)', () => {
  const reduceProfile = reductionOf('profile');
  const a: Profile = { user: 'u', segments: [{ segment: { vendor: 2, name: 'a' }, last: ts(1), member: true, first: ts(1) }] };
  const b: Profile = {
    user: 'u',
    segments: [
      { segment: { vendor: 1, name: 'a' }, last: ts(2), member: true, first: ts(2) },
      { segment: { vendor: 2, name: 'a' }, last: ts(3), member: false },
    ],
  };
  assert.deepEqual(reduceProfile(a, b).segments, [
    { segment: { vendor: 1, name: 'a' }, last: ts(2), member: true, first: ts(2) },
    { segment: { vendor: 2, name: 'a' }, last: ts(3), member: false, first: ts(1) },
  ]);
});

test('reduce - a toggle register remembers any add and the last event', () => {
  const reduceRegister = reductionOf('toggleRegister');
  const event = (id: string, remove?: true) => ({ event: id, timestamp: ts(1), ...(remove ? { remove } : {}) });
  let register: ToggleRegister | undefined;
  register = reduceRegister(register, { last: event('a'), added: true });
  register = reduceRegister(register, { last: event('b', true), added: false });
  assert.deepEqual(register, { last: event('b', true), added: true });
});
