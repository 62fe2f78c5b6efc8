import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import type { Event } from '@segment/model';
import { caughtUp, connectNats, createDeriveRuntime, defaultProvisionConfig, deprovision, deriveProgress, headers, namesFor, provision, type Names } from '@segment/nats';
import { membershipsDerivation, profilesDerivation, replay, togglesDerivation, type Derivation } from '@segment/segment';
import { generateEvents, readDerived } from './support/pipeline.ts';
import { natsUrl, randomNamespace, readStream, waitFor } from './support/streams.ts';

const logger = pino({ level: 'silent' });
const derivations = [membershipsDerivation, profilesDerivation, togglesDerivation] as Derivation[];
const cli = fileURLToPath(new URL('../apps/cli/bin/segment.js', import.meta.url));
const exec = promisify(execFile);

/** Runs `segment dlq ...` against the namespace; resolves with its exit code and output. */
async function dlq(names: Names, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [cli, 'dlq', ...args, '--nats', natsUrl, '--namespace', names.namespace]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/** A provisioned namespace on the shared server with a derive runtime running in-process; all removed after the test. */
async function pipeline(t: TestContext, name: string): Promise<{ nc: NatsConnection; names: Names }> {
  const nc = await connectNats({ servers: natsUrl, name: `test-${name}` });
  const names = namesFor(randomNamespace(name));
  await provision(nc, names, defaultProvisionConfig, logger);
  const { worker, close } = await createDeriveRuntime(nc, { names, derivations, logger });
  await worker.start();
  t.after(async () => {
    await worker.stop();
    await close();
    await deprovision(nc, names);
    await nc.close();
  });
  return { nc, names };
}

async function publishEvent(nc: NatsConnection, names: Names, event: unknown, vendor: number): Promise<void> {
  await jetstream(nc).publish(names.events.subject(vendor), JSON.stringify(event));
}

async function messageCount(nc: NatsConnection, stream: string): Promise<number> {
  return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
}

const derivedAll = async (nc: NatsConnection, names: Names) => caughtUp(await deriveProgress(nc, names));

test('dlq list - shows each dead letter with the field that failed, the subject and sequence it came from, and its payload', async (t) => {
  const { nc, names } = await pipeline(t, 'dlq_list');
  // Given a schema-invalid event and a valid one on a vendor's subject
  const [valid] = generateEvents(1, 21);
  const vendor = valid!.segment.vendor;
  const invalid = { ...valid, event: randomUUID(), segment: { vendor, name: 'x'.repeat(40) } };
  await publishEvent(nc, names, invalid, vendor);
  await publishEvent(nc, names, valid, vendor);
  await waitFor(async () => (await messageCount(nc, names.deadLetters.stream)) === 1 && (await derivedAll(nc, names)), 15_000);

  // When the dead letters are listed
  const listed = await dlq(names, 'list');

  // Then the letter is named with its reason (the field), its source subject and sequence, and its payload
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /: 1 dead letter\n/);
  assert.match(listed.stdout, /^#1 {2}\S+ {2}from (\S+) seq 1 /m);
  assert.ok(listed.stdout.includes(`from ${names.events.subject(vendor)} seq 1 (${names.events.stream})`), listed.stdout);
  assert.match(listed.stdout, /reason: {2}\/segment\/name: /);
  assert.ok(listed.stdout.includes(`payload: {"event":"${invalid.event}"`), listed.stdout);

  // And --json gives one object a line, with the whole payload
  const json = await dlq(names, 'list', '--json');
  assert.equal(json.code, 0, json.stderr);
  const lines = json.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(lines.length, 1);
  assert.equal(lines[0].seq, 1);
  assert.equal(lines[0].sourceSubject, names.events.subject(vendor));
  assert.equal(lines[0].sourceStream, names.events.stream);
  assert.equal(lines[0].sourceSeq, 1);
  assert.match(lines[0].reason, /^\/segment\/name: /);
  assert.deepEqual(JSON.parse(lines[0].payload), invalid);

  // And replaying a letter that is still invalid moves it: removed, then dead-lettered again from its new sequence
  const again = await dlq(names, 'replay', '--seq', '1');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^#1: replayed to \S+ as seq 3; removed from /m);
  await waitFor(async () => (await messageCount(nc, names.deadLetters.stream)) === 1 && (await derivedAll(nc, names)), 15_000);
  const [letter] = await readStream(nc, names.deadLetters.stream);
  assert.equal(letter!.seq, 2);
  assert.equal(letter!.headers[headers.deadSequence], '3');
  assert.deepEqual(JSON.parse(new TextDecoder().decode(letter!.data)), invalid);

  // And a letter that is not there is reported, with exit code 1
  const missing = await dlq(names, 'replay', '--seq', '1');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /#1: no such dead letter/);
});

test('dlq replay --all - a letter rejected before a fix is derived once replayed, and the queue ends empty', async (t) => {
  const { nc, names } = await pipeline(t, 'dlq_replay');
  const [first, rejected] = generateEvents(2, 22);
  const vendor = rejected!.segment.vendor;
  await publishEvent(nc, names, first, first!.segment.vendor);
  // Given a valid event that a bug since fixed dead-lettered: it sits in the DLQ as the sink writes letters
  const letter = natsHeaders();
  letter.set(headers.deadReason, '/segment/name: rejected by a bug since fixed');
  letter.set(headers.deadStream, names.events.stream);
  letter.set(headers.deadSubject, names.events.subject(vendor));
  letter.set(headers.deadSequence, '17');
  await jetstream(nc).publish(names.deadLetters.subject('events'), JSON.stringify(rejected), { headers: letter });
  await waitFor(() => derivedAll(nc, names), 15_000);

  // When a dry run is asked for, nothing changes
  const dry = await dlq(names, 'replay', '--all', '--dry-run');
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`^#1: would replay to ${names.events.subject(vendor).replaceAll('.', '\\.')} \\(was seq 17; `, 'm'));
  assert.equal(await messageCount(nc, names.deadLetters.stream), 1);
  assert.equal(await messageCount(nc, names.events.stream), 1);

  // When every letter is replayed
  const replayed = await dlq(names, 'replay', '--all');
  assert.equal(replayed.code, 0, replayed.stderr);
  assert.match(replayed.stdout, /^#1: replayed to \S+ as seq 2; removed from /m);
  assert.match(replayed.stdout, /^replayed 1 dead letter$/m);

  // Then the event is derived like any other, and the queue is empty
  await waitFor(async () => (await messageCount(nc, names.events.stream)) === 2 && (await derivedAll(nc, names)), 15_000);
  const stored = (await readStream(nc, names.events.stream)).map((message) => JSON.parse(new TextDecoder().decode(message.data)) as Event);
  assert.deepEqual(stored, [first, rejected]);
  const derived = await readDerived(nc, names);
  assert.deepEqual(derived.memberships, replay(stored).memberships);
  assert.ok(
    derived.memberships.some((m) => isMembershipOf(m, rejected!)),
    'the replayed event has its membership',
  );
  assert.equal(await messageCount(nc, names.deadLetters.stream), 0);

  // And a second replay has nothing to do: no event twice
  const second = await dlq(names, 'replay', '--all');
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /^replayed 0 dead letters$/m);
  assert.equal(await messageCount(nc, names.events.stream), 2);
});

function isMembershipOf(membership: unknown, event: Event): boolean {
  const m = membership as { user: string; segment: { vendor: number; name: string } };
  return m.user === event.user && m.segment.vendor === event.segment.vendor && m.segment.name === event.segment.name;
}

test('dlq - an action without what it needs is a usage error (exit 2), before any connection', async () => {
  const names = namesFor('t_dlq_usage');
  const replayNothing = await dlq(names, 'replay');
  assert.equal(replayNothing.code, 2);
  assert.match(replayNothing.stderr, /replay needs either --seq N \(repeatable\) or --all/);
  assert.equal((await dlq(names, 'replay', '--all', '--seq', '3')).code, 2);
  assert.equal((await dlq(names, 'list', '--all')).code, 2);
  assert.equal((await dlq(names, 'purge')).code, 2);
});
