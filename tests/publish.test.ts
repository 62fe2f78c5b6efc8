// `segment publish` as a user runs it: NDJSON on stdin, events on the stream, bad lines on stderr.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { Event } from '@segment/model';
import { connectNats, defaultProvisionConfig, deprovision, headers, namesFor, provision, type Names } from '@segment/nats';
import { generateEvents } from './support/pipeline.ts';
import { natsUrl, randomNamespace, readStream } from './support/streams.ts';

const cli = fileURLToPath(new URL('../apps/cli/bin/segment.js', import.meta.url));

function segment(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, SEGMENT_NATS_URL: natsUrl }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** A provisioned namespace, removed when the test ends. */
async function namespace(t: TestContext): Promise<{ names: Names; stored: () => ReturnType<typeof readStream> }> {
  const nc = await connectNats({ servers: natsUrl, name: 'test-publish' });
  const names = namesFor(randomNamespace('publish'));
  await provision(nc, names, defaultProvisionConfig, pino({ level: 'silent' }));
  t.after(async () => {
    await deprovision(nc, names);
    await nc.close();
  });
  return { names, stored: () => readStream(nc, names.events.stream) };
}

const events = generateEvents(6, 23);
const invalid = { ...events[0]!, event: '0f8fad5b-d9cb-469f-a165-70867728950e', segment: { vendor: 0, name: 'planes' } };
// Line 3 is not JSON, line 5 breaks the schema, line 7 is blank, the last line has no newline.
const lines = [events[0], events[1], '{"event": oops', events[2], invalid, events[3], '', events[4], events[5]].map((line) => (typeof line === 'string' ? line : JSON.stringify(line)));
const input = lines.join('\n');

function assertStored(stored: Awaited<ReturnType<typeof readStream>>, names: Names, expected: readonly Event[]) {
  assert.deepEqual(
    stored.map((m) => ({ subject: m.subject, msgId: m.headers[headers.msgId], event: JSON.parse(new TextDecoder().decode(m.data)) })),
    expected.map((event) => ({ subject: names.events.subject(event.segment.vendor), msgId: event.event, event })),
  );
}

test('segment publish - publishes the valid lines, reports each bad line by number and field, exits 1', async (t) => {
  const { names, stored } = await namespace(t);
  const run = await segment(['publish', '--namespace', names.namespace], input);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /^line 3: not JSON: /m);
  assert.match(run.stderr, /^line 5: \/segment\/vendor: must be >= 1$/m);
  assert.doesNotMatch(run.stderr, /^line 7/m);
  assert.match(run.stderr, /published 6, duplicates 0, rejected 2, in [\d.]+ s \(\d+ events\/s\)/);
  assertStored(await stored(), names, events);

  // Again: every event id is known, nothing new is stored.
  const again = await segment(['publish', '--namespace', names.namespace], lines.filter((_, i) => i !== 2 && i !== 4).join('\n') + '\n');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /published 0, duplicates 6, rejected 0/);
  assert.equal((await stored()).length, 6);
});

test('segment publish - --strict stops at the first bad line', async (t) => {
  const { names, stored } = await namespace(t);
  const run = await segment(['publish', '--namespace', names.namespace, '--strict'], input);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /^line 3: not JSON: /m);
  assert.doesNotMatch(run.stderr, /^line 5/m);
  assert.match(run.stderr, /published 2, duplicates 0, rejected 1, .* stopped at line 3 \(--strict\)/);
  assertStored(await stored(), names, events.slice(0, 2));
});

test('segment publish - without the events stream it says to run segment setup', async () => {
  const names = namesFor(randomNamespace('publish'));
  const run = await segment(['publish', '--namespace', names.namespace], JSON.stringify(events[0]) + '\n');
  assert.equal(run.code, 1);
  assert.match(run.stderr, new RegExp(`no stream captures ${names.events.subject(events[0]!.segment.vendor).replaceAll('.', '\\.')}: run \`segment setup --namespace ${names.namespace}\` first`));
  assert.match(run.stderr, /failed 1/);
});

test('segment publish - a bad flag is a usage error', async () => {
  const run = await segment(['publish', '--rate', 'fast'], '');
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--rate must be a number >= 0, got "fast"/);
});
