import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { matchDocuments } from './match.ts';

describe('catalog matching', () => {
  test('properties not given are not checked', () => {
    assert.equal(matchDocuments([{ user: 'alice' }], [{ user: 'alice', member: true, segment: { vendor: 1, name: 'x' } }]), null);
    assert.equal(matchDocuments([{}], [{ anything: 1 }]), null);
  });

  test('nested objects match as subsets too', () => {
    assert.equal(matchDocuments([{ segment: { name: 'x' } }], [{ segment: { vendor: 1, name: 'x' } }]), null);
  });

  test('no documents expected matches no documents', () => {
    assert.equal(matchDocuments([], []), null);
  });

  test('a different number of documents is a mismatch that lists both sides', () => {
    const mismatch = matchDocuments([], [{ event: 'e1' }]);

    assert.equal(mismatch?.path, '');
    assert.equal(mismatch?.expected, 0);
    assert.equal(mismatch?.actual, 1);
    assert.match(mismatch?.text ?? '', /^expected 0 documents, actual 1 document\n/);
    assert.match(mismatch?.text ?? '', /actual:\n {2}\[0\] \{"event":"e1"\}/);
  });

  test('a given property that differs is a mismatch naming its path', () => {
    const expected = [{ user: 'alice' }, { user: 'bob', segments: [{ member: true }, { member: false }] }];
    const actual = [{ user: 'alice' }, { user: 'bob', segments: [{ member: true }, { member: true, last: 't' }] }];

    const mismatch = matchDocuments(expected, actual);

    assert.equal(mismatch?.path, '[1]/segments/1/member');
    assert.equal(mismatch?.expected, false);
    assert.equal(mismatch?.actual, true);
    const lines = mismatch?.text.split('\n') ?? [];
    assert.equal(lines[0], '[1]/segments/1/member: expected false, actual true');
    assert.ok(lines.includes('expected [1] (subset):'));
    assert.ok(lines.includes('actual [1]:'));
    assert.ok(lines.includes('        "last": "t"'), 'the whole actual document is shown');
  });

  test('a given property that is absent is a mismatch', () => {
    const mismatch = matchDocuments([{ value: 'v' }], [{ member: true }]);

    assert.equal(mismatch?.path, '[0]/value');
    assert.equal(mismatch?.actual, undefined);
    assert.match(mismatch?.text ?? '', /^\[0\]\/value: expected "v", actual \(absent\)/);
  });

  test('arrays must have the same length', () => {
    const mismatch = matchDocuments([{ segments: [{}] }], [{ segments: [{}, {}] }]);

    assert.equal(mismatch?.path, '[0]/segments');
    assert.match(mismatch?.text ?? '', /^\[0\]\/segments: expected 1 element, actual 2 elements/);
  });

  test('array elements are matched as subsets, position by position', () => {
    assert.equal(matchDocuments([{ a: [{ x: 1 }, { y: 2 }] }], [{ a: [{ x: 1, z: 0 }, { y: 2, z: 0 }] }]), null);
    assert.equal(matchDocuments([{ a: [{ y: 2 }, { x: 1 }] }], [{ a: [{ x: 1 }, { y: 2 }] }])?.path, '[0]/a/0/y');
  });

  test('nested arrays compare element by element at every depth', () => {
    assert.equal(matchDocuments([{ m: [[1, 2], [3]] }], [{ m: [[1, 2], [3]] }]), null);
    assert.equal(matchDocuments([{ m: [[1, 2], [3]] }], [{ m: [[1, 2], [3, 4]] }])?.path, '[0]/m/1');
    assert.equal(matchDocuments([{ m: [[1, 2], [3]] }], [{ m: [[1, 5], [3]] }])?.path, '[0]/m/0/1');
  });

  test('types must agree: an object is not an array, null is not absent', () => {
    assert.equal(matchDocuments([{ a: {} }], [{ a: [] }])?.path, '[0]/a');
    assert.equal(matchDocuments([{ a: [] }], [{ a: {} }])?.path, '[0]/a');
    assert.equal(matchDocuments([{ a: null }], [{}])?.path, '[0]/a');
    assert.equal(matchDocuments([{ a: 1 }], [{ a: '1' }])?.path, '[0]/a');
    assert.equal(matchDocuments(['x'], [{ a: 1 }])?.path, '[0]');
  });

  test('property names with / and ~ are escaped in the path', () => {
    assert.equal(matchDocuments([{ 'a/b': { '~c': 1 } }], [{ 'a/b': { '~c': 2 } }])?.path, '[0]/a~1b/~0c');
  });
});
