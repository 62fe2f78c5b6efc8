import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allowsVendor, bearerToken, openGrant, parseTokenEntries, sha256Hex, TokenChecker, TokenConfigError } from './tokens.ts';

test('sha256Hex - matches `printf %s "$TOKEN" | sha256sum`', () => {
  // printf %s secret | sha256sum
  assert.equal(sha256Hex('secret'), '2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b');
});

test('tokens - no tokens configured: every request gets the open grant', () => {
  const checker = new TokenChecker([]);
  assert.equal(checker.required, false);
  assert.equal(checker.authenticate(undefined), openGrant);
  assert.equal(allowsVendor(openGrant, 12345), true);
});

test('tokens - a known token gets its grant, an unknown or missing one nothing', () => {
  const checker = new TokenChecker([
    { tokenSha256: sha256Hex('all-vendors'), name: 'admin' },
    { tokenSha256: sha256Hex('vendor-3').toUpperCase(), vendors: [3, 4] },
  ].map((entry) => parseTokenEntries([entry])[0]!));
  assert.equal(checker.required, true);
  const admin = checker.authenticate('all-vendors');
  assert.equal(admin?.name, 'admin');
  assert.equal(allowsVendor(admin!, 99), true);
  const scoped = checker.authenticate('vendor-3');
  assert.deepEqual([3, 4, 5].map((v) => allowsVendor(scoped!, v)), [true, true, false]);
  assert.equal(checker.authenticate('wrong'), undefined);
  assert.equal(checker.authenticate(''), undefined);
  assert.equal(checker.authenticate(undefined), undefined);
});

test('bearerToken - only the Bearer scheme', () => {
  assert.equal(bearerToken('Bearer abc.def'), 'abc.def');
  assert.equal(bearerToken('bearer   abc '), 'abc');
  assert.equal(bearerToken('Basic YWJj'), undefined);
  assert.equal(bearerToken('Bearer'), undefined);
  assert.equal(bearerToken('Bearer a b'), undefined);
  assert.equal(bearerToken(undefined), undefined);
});

test('parseTokenEntries - good lists and bad entries, each failing by name', () => {
  const hash = sha256Hex('x');
  assert.deepEqual(parseTokenEntries([{ tokenSha256: hash }]), [{ tokenSha256: hash }]);
  assert.deepEqual(parseTokenEntries({ tokens: [{ tokenSha256: hash, vendors: [1], name: 'n' }] }), [{ tokenSha256: hash, vendors: [1], name: 'n' }]);
  const bad: [unknown, RegExp][] = [
    [{}, /expected an array/],
    [[1], /tokens\[0\]: expected an object/],
    [[{ token: 'plain' }], /never the token itself/],
    [[{ tokenSha256: 'abc' }], /tokens\[0\]\.tokenSha256: expected 64 hex/],
    [[{ tokenSha256: hash, vendors: [0] }], /tokens\[0\]\.vendors/],
    [[{ tokenSha256: hash, vendors: 3 }], /tokens\[0\]\.vendors/],
    [[{ tokenSha256: hash, scopes: [] }], /tokens\[0\]\.scopes: unknown field/],
  ];
  for (const [input, message] of bad) {
    assert.throws(() => parseTokenEntries(input), (error: unknown) => error instanceof TokenConfigError && message.test(error.message), JSON.stringify(input));
  }
});
