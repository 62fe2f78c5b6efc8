import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CatalogFormatError, parseCatalog } from './catalog-format.ts';

describe('catalog format', () => {
  test('tests keep their order, and each step its kind, collection and documents', () => {
    const yaml = `
tests:
  "first test":
    - ingest:
        collection: segment/events
        documents:
          - { event: e1, user: alice }
    - verify:
        collection: segment/memberships
        documents: []
  "second test": []
`;

    const tests = parseCatalog(yaml, 'inline.yaml');

    assert.deepEqual(tests, [
      {
        name: 'first test',
        steps: [
          { kind: 'ingest', collection: 'segment/events', documents: [{ event: 'e1', user: 'alice' }] },
          { kind: 'verify', collection: 'segment/memberships', documents: [] },
        ],
      },
      { name: 'second test', steps: [] },
    ]);
  });

  test('anchors and aliases resolve, and timestamps stay strings', () => {
    const yaml = `
tests:
  aliased:
    - ingest:
        collection: segment/events
        documents:
          - timestamp: &ts "2021-01-16T12:34:56Z"
            segment: &planes { vendor: 42, name: planes }
            unquoted: 2021-01-17T12:34:56Z
    - verify:
        collection: segment/memberships
        documents:
          - { segment: *planes, first: *ts }
`;

    const [aliased] = parseCatalog(yaml, 'inline.yaml');

    assert.deepEqual(aliased?.steps[0]?.documents, [
      { timestamp: '2021-01-16T12:34:56Z', segment: { vendor: 42, name: 'planes' }, unquoted: '2021-01-17T12:34:56Z' },
    ]);
    assert.deepEqual(aliased?.steps[1]?.documents, [{ segment: { vendor: 42, name: 'planes' }, first: '2021-01-16T12:34:56Z' }]);
  });

  const malformed: [string, string, RegExp][] = [
    ['invalid YAML', 'tests: [unclosed', /^bad\.yaml: not valid YAML/],
    ['no tests key', 'other: 1', /^bad\.yaml: expected a mapping with a "tests" key/],
    ['tests not a mapping', 'tests: [a, b]', /"tests" must be a mapping/],
    ['steps not a list', 'tests:\n  t: { ingest: {} }', /test "t": steps must be a list/],
    [
      'unknown step',
      'tests:\n  t:\n    - verify: { collection: segment/events, documents: [] }\n    - publish: { collection: segment/events, documents: [] }',
      /^bad\.yaml: test "t", step 2: unknown step "publish"/,
    ],
    [
      'two kinds in one step',
      'tests:\n  t:\n    - ingest: { collection: segment/events, documents: [] }\n      verify: { collection: segment/events, documents: [] }',
      /test "t", step 1: expected exactly one of "ingest" or "verify", got "ingest", "verify"/,
    ],
    [
      'unknown collection',
      'tests:\n  t:\n    - ingest: { collection: segment/users, documents: [] }',
      /test "t", step 1 \(ingest\): unknown collection "segment\/users" \(known: segment\/events,/,
    ],
    [
      'documents not a list',
      'tests:\n  t:\n    - verify: { collection: segment/toggles, documents: { event: x } }',
      /test "t", step 1 \(verify\): "documents" must be a list/,
    ],
    [
      'documents missing',
      'tests:\n  t:\n    - verify: { collection: segment/toggles }',
      /test "t", step 1 \(verify\): "documents" must be a list/,
    ],
    [
      'unknown key in a step',
      'tests:\n  t:\n    - verify: { collection: segment/toggles, documents: [], wait: 5 }',
      /step 1 \(verify\): unknown key "wait"/,
    ],
    ['duplicate test name', 'tests:\n  t: []\n  t: []', /not valid YAML: .*unique/i],
  ];
  for (const [what, yaml, message] of malformed) {
    test(`a malformed file fails clearly: ${what}`, () => {
      assert.throws(() => parseCatalog(yaml, 'bad.yaml'), (error: unknown) => {
        assert.ok(error instanceof CatalogFormatError);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
