import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeKey, decodeKeyToken, encodeKey, encodeKeyToken } from './kv-keys.ts';

const validKey = /^[-/_=.a-zA-Z0-9]+$/;

test('kv keys - plain names stay readable; anything else is escaped into the allowed alphabet', () => {
  assert.equal(encodeKey([7, 'seg-1A', 'usr-00ff00']), '7.seg-1A.usr-00ff00');
  assert.equal(encodeKeyToken('a.b'), 'a=2Eb');
  assert.equal(encodeKeyToken(''), '=');
  assert.equal(encodeKeyToken('é'), '=C3=A9');
  assert.equal(encodeKeyToken('=='), '=3D=3D');
  for (const value of ['a b', '*', '>', '\u{1F600}', 'x/y', '\n']) assert.match(encodeKeyToken(value), validKey);
  // JSON can carry lone surrogates; they must not all collapse into U+FFFD.
  assert.notEqual(encodeKeyToken('\uD800'), encodeKeyToken('\uD801'));
  assert.equal(decodeKeyToken(encodeKeyToken('a\uDC00é')), 'a\uDC00é');
});

test('kv keys - user z.x in segment y and user x in segment y.z are different registers', () => {
  assert.notEqual(encodeKey([1, 'y', 'z.x']), encodeKey([1, 'y.z', 'x']));
});

test('kv keys - any strings round-trip, and different keys never collide', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 3 }), fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 3 }), (a, b) => {
      const ka = encodeKey(a);
      assert.match(ka, validKey);
      assert.deepEqual(decodeKey(ka), a);
      if (JSON.stringify(a) !== JSON.stringify(b)) assert.notEqual(ka, encodeKey(b));
    }),
    { numRuns: 2000 },
  );
});
