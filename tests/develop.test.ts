import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@segment/devenv';
import { connectNats, deprovision, namesFor } from '@segment/nats';
import { dropSchema, openDatabase } from '@segment/postgres';
import { databaseUrl } from './support/postgres.ts';
import { natsUrl, randomNamespace, waitFor } from './support/streams.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs `segment develop` and collects its stderr; `stop()` sends Ctrl-C and resolves with the exit code. */
function develop(args: string[]) {
  const child = spawn(process.execPath, ['apps/cli/bin/segment.js', 'develop', '--port', '0', ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    get stderr() {
      return stderr;
    },
    async stop() {
      child.kill('SIGINT');
      return exited;
    },
  };
}

test('develop - npm start runs the whole pipeline: generated events show up in Postgres; Ctrl-C drains and exits 0', async (t) => {
  const namespace = randomNamespace('dev');
  const database = openDatabase({ connectionString: databaseUrl, schema: namespace });
  const nc = await connectNats({ servers: natsUrl, name: 'test-develop' });
  t.after(async () => {
    await deprovision(nc, namesFor(namespace));
    await nc.close();
    await dropSchema(database);
    await database.destroy();
  });
  const run = develop(['--namespace', namespace, '--generate', '2000', '--nats', natsUrl, '--database', databaseUrl]);
  await waitFor(
    async () => {
      const row = await database.db.selectFrom('segment_memberships').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirst().catch(() => undefined);
      return Number(row?.n ?? 0) > 500;
    },
    60_000,
    () => run.stderr,
  );
  const profiles = await database.db.selectFrom('segment_profiles').select('document').limit(1).execute();
  assert.equal(profiles.length, 1);
  assert.equal(await run.stop(), 0);
  assert.match(run.stderr, /ingest at http:\/\/127\.0\.0\.1:\d+\/ingest\/segment\/events/);
  assert.match(run.stderr, /stopped cleanly after generating [\d,]+ events/);
});

test('develop - a first run with no NATS and no Postgres starts nats-server and uses embedded PGlite under the state dir', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'segment-develop-'));
  t.after(() => rm(stateDir, { recursive: true, force: true }));
  const [natsPort, pgPort] = [await freePort(), await freePort()];
  const run = develop(['--generate', '500', '--state-dir', stateDir, '--nats', `nats://127.0.0.1:${natsPort}`, '--database', `postgres://postgres@127.0.0.1:${pgPort}/x`]);
  await waitFor(async () => /rows written [1-9]/.test(run.stderr), 90_000, () => run.stderr);
  assert.equal(await run.stop(), 0);
  assert.match(run.stderr, /started nats-server on 127\.0\.0\.1:\d+ \(store .*nats\)/);
  assert.match(run.stderr, /using an embedded PGlite database in .*pglite/);
});
