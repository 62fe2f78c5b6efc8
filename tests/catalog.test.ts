import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { databaseUrl } from './support/postgres.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const catalog = fileURLToPath(new URL('../../shared/catalog/segment.tests.yaml', import.meta.url));

async function segmentTest(...args: string[]) {
  return run(process.execPath, ['apps/cli/bin/segment.js', 'test', ...args, catalog], { cwd: root, env: { ...process.env, SEGMENT_DATABASE_URL: databaseUrl } });
}

test('catalog - the shared catalog passes on the real pipeline (NATS + Postgres)', async () => {
  const { stdout } = await segmentTest('--engine', 'nats');
  assert.match(stdout, /Segment membership updates with segmentation events: PASSED/);
  assert.equal(stdout.trim().split('\n').at(-1), '3 passed, 0 failed');
});

test('catalog - runs are isolated: two at once, and again, keep passing', async () => {
  const runs = await Promise.all([segmentTest('--engine', 'nats'), segmentTest('--engine', 'nats')]);
  for (const { stdout } of runs) assert.equal(stdout.trim().split('\n').at(-1), '3 passed, 0 failed');
});

test('catalog - the same file passes on the memory engine', async () => {
  const { stdout } = await segmentTest('--engine', 'memory');
  assert.equal(stdout.trim().split('\n').at(-1), '3 passed, 0 failed');
});
