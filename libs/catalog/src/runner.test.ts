import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseCatalog, type CatalogStep, type CatalogTest } from './catalog-format.ts';
import type { Engine } from './engine.ts';
import { createMemoryEngine } from './memory-engine.ts';
import { formatResultLine, formatSummary, runCatalog, type TestResult } from './runner.ts';

// The shared catalog sits beside the repository (in CI too): the repository root is three levels up.
const repositoryRoot = new URL('../../../', import.meta.url);
const sharedCatalog = new URL('../shared/catalog/segment.tests.yaml', repositoryRoot);

const alice = {
  event: '11111111-2222-3333-4444-000000000000',
  timestamp: '2021-01-16T12:34:56Z',
  user: 'alice',
  segment: { vendor: 42, name: 'planes' },
};

function oneTest(steps: CatalogTest['steps'], name = 'a test'): CatalogTest[] {
  return [{ name, steps }];
}

describe('catalog runner', () => {
  test('the shared catalog passes on the memory engine', async () => {
    // Given the shared contract tests
    const tests = parseCatalog(await readFile(sharedCatalog, 'utf8'), sharedCatalog.pathname);

    // When they run on the reference model
    const heard: TestResult[] = [];
    const run = await runCatalog(tests, createMemoryEngine, (result) => heard.push(result));

    // Then all three pass, each reported as it ends
    assert.deepEqual(
      run.results.filter((result) => !result.passed).map((result) => formatResultLine(result)),
      [],
    );
    assert.equal(formatSummary(run), '3 passed, 0 failed');
    assert.deepEqual(heard, run.results);
  });

  test('a wrong expectation fails with a diff naming the path', async () => {
    // Given a verify that expects alice to be out of planes, after adding her
    const tests = oneTest([
      { kind: 'ingest', collection: 'segment/events', documents: [alice] },
      { kind: 'verify', collection: 'segment/memberships', documents: [{ user: 'alice', member: false }] },
    ]);

    // When run
    const run = await runCatalog(tests, createMemoryEngine);

    // Then it fails at step 2, naming the property and showing the actual document
    assert.equal(formatSummary(run), '0 passed, 1 failed');
    const [result] = run.results;
    assert.equal(result?.passed, false);
    assert.match(result?.error ?? '', /^step 2 \(verify segment\/memberships\): \[0\]\/member: expected false, actual true\n/);
    assert.match(result?.error ?? '', /"first": "2021-01-16T12:34:56Z"/);
  });

  test('an invalid event fails the test with its field errors, before reaching the engine', async () => {
    let ingested = 0;
    const engine: Engine = {
      async ingest() {
        ingested++;
      },
      async read() {
        return [];
      },
      async close() {},
    };
    const tests = oneTest([
      { kind: 'ingest', collection: 'segment/events', documents: [alice, { ...alice, segment: { vendor: 0, name: 'planes' }, remove: false }] },
    ]);

    const [result] = (await runCatalog(tests, async () => engine)).results;

    assert.equal(ingested, 0);
    assert.equal(result?.passed, false);
    assert.match(result?.error ?? '', /^step 1 \(ingest segment\/events\): invalid documents\n {2}document 1: /);
    assert.match(result?.error ?? '', /\/segment\/vendor: must be >= 1/);
    assert.match(result?.error ?? '', /\/remove: must be true/);
  });

  test('each test gets a fresh engine, and every engine is closed', async () => {
    const names: string[] = [];
    let closed = 0;
    const factory = async (name: string): Promise<Engine> => {
      names.push(name);
      const engine = await createMemoryEngine();
      return { ...engine, close: async () => void closed++ };
    };
    const verifyOne: CatalogStep = { kind: 'verify', collection: 'segment/events', documents: [{ user: 'alice' }] };
    const tests: CatalogTest[] = [
      { name: 'first', steps: [{ kind: 'ingest', collection: 'segment/events', documents: [alice] }, verifyOne] },
      { name: 'second', steps: [verifyOne] },
    ];

    const run = await runCatalog(tests, factory);

    assert.deepEqual(names, ['first', 'second']);
    assert.equal(closed, 2);
    assert.deepEqual(
      run.results.map((result) => result.passed),
      [true, false],
      'the second test does not see the first test\'s event',
    );
    assert.match(run.results[1]?.error ?? '', /expected 1 document, actual 0 documents/);
  });

  test('an error thrown by the engine fails only its test, naming the step', async () => {
    const failing = async (): Promise<Engine> => ({
      async ingest() {},
      async read() {
        throw new Error('connection lost');
      },
      async close() {},
    });
    const tests = oneTest([{ kind: 'verify', collection: 'segment/toggles', documents: [] }]);

    const [result] = (await runCatalog(tests, failing)).results;

    assert.equal(result?.error, 'step 1 (verify segment/toggles): connection lost');
  });

  test('the memory engine refuses documents for derived collections', async () => {
    const tests = oneTest([{ kind: 'ingest', collection: 'segment/memberships', documents: [] }]);

    const [result] = (await runCatalog(tests, createMemoryEngine)).results;

    assert.match(result?.error ?? '', /only segment\/events accepts documents/);
  });
});

describe('catalog result formatting', () => {
  test('a passed test is one line', () => {
    assert.equal(formatResultLine({ name: 'works', passed: true, durationMs: 1 }), 'works: PASSED');
  });

  test('a failed test is followed by its reason, indented', () => {
    assert.equal(
      formatResultLine({ name: 'breaks', passed: false, error: 'line one\nline two', durationMs: 1 }),
      'breaks: FAILED\n    line one\n    line two',
    );
  });

  test('the summary is exactly "N passed, N failed"', () => {
    assert.equal(formatSummary({ passed: 2, failed: 1 }), '2 passed, 1 failed');
  });
});
