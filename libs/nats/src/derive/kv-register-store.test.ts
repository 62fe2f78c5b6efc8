// Runs against the shared nats-server at 127.0.0.1:4222; every test takes its own namespace.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { pino } from 'pino';
import { keyId, type StoredRegister } from '@segment/runtime';
import { encodeKey, encodeKeyToken } from '../kv-keys.ts';
import { namesFor, type Names } from '../names.ts';
import { defaultProvisionConfig, deprovision, provision } from '../provision.ts';
import { PipelinedPublisher } from '../publisher.ts';
import { KvRegisterStore, pageKeyOf, registerInPage } from './kv-register-store.ts';

const url = process.env.SEGMENT_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
let nc: NatsConnection;
let publisher: PipelinedPublisher;
const used: Names[] = [];

before(async () => {
  nc = await connect({ servers: url });
  publisher = new PipelinedPublisher(nc);
});

after(async () => {
  for (const names of used) await deprovision(nc, names);
  await publisher.close();
  await nc.close();
});

type Register = StoredRegister<{ n: number }>;

async function fixture(journalBytes?: number) {
  const names = namesFor(`t_${randomBytes(5).toString('hex')}`);
  used.push(names);
  await provision(nc, names, { ...defaultProvisionConfig, storage: 'memory' }, pino({ level: 'silent' }));
  const bucket = names.buckets.toggleRegisters;
  const kv = await new Kvm(nc).open(bucket);
  const journal = { stream: names.registerJournal.stream, subject: (partition: string) => names.registerJournal.subject(bucket, partition) };
  const open = () => new KvRegisterStore({ nc, bucket, publisher, logger: pino({ level: 'silent' }), journal, journalBytes });
  const journalMessages = async (partition: string) => {
    const info = await (await jetstreamManager(nc)).streams.info(journal.stream, { subjects_filter: journal.subject(partition) });
    return info.state.subjects?.[journal.subject(partition)] ?? 0;
  };
  const pageOf = (key: (string | number)[]) => pageKeyOf(encodeKeyToken(key[0]!), encodeKey(key));
  const inBucket = async (key: (string | number)[]) => {
    const found = registerInPage((await kv.get(pageOf(key)))?.string() ?? '', encodeKey(key));
    return found === undefined ? undefined : (JSON.parse(found) as Register);
  };
  /** Writes registers to the bucket's pages as an earlier move would have (each key's page holds only it). */
  const putInBucket = async (key: (string | number)[], registerJson: string) => kv.put(pageOf(key), `${encodeKey(key)} ${registerJson}\n`);
  return { open, journalMessages, inBucket, putInBucket, pageOf, kv };
}

const register = (n: number, seq: number): Register => ({ value: { n }, seq });
/** A register as the store takes and gives it: its JSON text. */
const json = (n: number, seq: number) => JSON.stringify(register(n, seq));

test('register store - a commit is journaled, read back from the journal, and not yet in the bucket', async () => {
  const { open, journalMessages, inBucket } = await fixture();
  const store = open();
  const alice = [7, 'trains', 'alice.x'];
  const bob = [7, 'trains', 'bob 🚆'];
  await store.save([
    { key: alice, json: json(1, 10) },
    { key: bob, json: json(2, 11) },
  ]);
  assert.equal(await journalMessages('7'), 1);
  assert.equal(await inBucket(alice), undefined);
  const loaded = await store.load([alice, bob, [7, 'trains', 'carol']]);
  assert.deepEqual(loaded.get(keyId(alice)), json(1, 10));
  assert.deepEqual(loaded.get(keyId(bob)), json(2, 11));
  assert.equal(loaded.size, 2);
});

test('register store - a restart replays the journal: its registers win over older ones in the bucket', async () => {
  const { open, journalMessages, putInBucket } = await fixture();
  const key = [8, 'planes', 'alice'];
  const onlyInBucket = [8, 'planes', 'bob'];
  // As an earlier emptying of the journal left them.
  await putInBucket(key, json(1, 5));
  await putInBucket(onlyInBucket, json(7, 4));
  await open().save([{ key, json: json(2, 6) }]);
  assert.equal(await journalMessages('8'), 1);
  const loaded = await open().load([key, onlyInBucket]);
  assert.deepEqual(loaded.get(keyId(key)), json(2, 6));
  assert.deepEqual(loaded.get(keyId(onlyInBucket)), json(7, 4));
});

test('register store - a page deleted from the bucket reads as no registers', async () => {
  const { open, kv, putInBucket, pageOf } = await fixture();
  const kept = [4, 'cars', 'alice'];
  const deleted = [4, 'cars', 'bob'];
  assert.notEqual(pageOf(kept), pageOf(deleted));
  await putInBucket(kept, json(1, 5));
  await putInBucket(deleted, json(2, 6));
  await kv.delete(pageOf(deleted));
  const loaded = await open().load([kept, deleted]);
  assert.deepEqual([...loaded], [[keyId(kept), json(1, 5)]]);
});

test('register store - past its size, a journal moves to the bucket and is purged; the registers stay readable', async () => {
  const { open, journalMessages, inBucket } = await fixture(4_000);
  const store = open();
  const keys = Array.from({ length: 100 }, (_, i) => [9, 'boats', `user-${i}`]);
  await store.save(keys.map((key, i) => ({ key, json: json(i, 100 + i) })));
  // The move runs in the background: commits go on meanwhile, into newer journal messages.
  await store.save([{ key: keys[0]!, json: json(1_000, 300) }]);
  await store.settle();
  assert.equal(await journalMessages('9'), 1, 'the commit made during the move stays journaled');
  assert.deepEqual(await inBucket(keys[42]!), register(42, 142));
  const restarted = open();
  const loaded = await restarted.load(keys);
  assert.equal(loaded.size, 100);
  assert.deepEqual(loaded.get(keyId(keys[99]!)), json(99, 199));
  assert.deepEqual(loaded.get(keyId(keys[0]!)), json(1_000, 300));
});

test('register store - a commit larger than a message is journaled as several, and replays whole', async () => {
  const { open, journalMessages } = await fixture();
  const store = open();
  const padding = 'x'.repeat(2_000);
  const keys = Array.from({ length: 1_200 }, (_, i) => [3, padding, `user-${i}`]);
  await store.save(keys.map((key, i) => ({ key, json: json(i, i + 1) })));
  assert.ok((await journalMessages('3')) >= 3, 'split into messages under the limit');
  const loaded = await open().load(keys);
  assert.equal(loaded.size, 1_200);
  assert.deepEqual(loaded.get(keyId(keys[1_199]!)), json(1_199, 1_200));
});

test('register store - a later move merges into the pages an earlier one wrote, keeping their other registers', async () => {
  const { open, inBucket } = await fixture(2_000);
  const store = open();
  const keys = Array.from({ length: 5_000 }, (_, i) => [6, 'bikes', `user-${i}`]);
  await store.save(keys.map((key, i) => ({ key, json: json(i, i + 1) })));
  await store.settle();
  // More keys than pages: pages hold several registers, and this move rewrites some of them.
  const changed = keys.filter((_, i) => i % 7 === 0);
  await store.save(changed.map((key, i) => ({ key, json: json(-i, 10_000 + i) })));
  await store.settle();
  assert.equal(store.stats.moves, 2);
  assert.ok(store.stats.pagesWritten < store.stats.moved, `registers share pages (${store.stats.pagesWritten} pages for ${store.stats.moved} registers)`);
  assert.deepEqual(await inBucket(keys[1]!), register(1, 2));
  assert.deepEqual(await inBucket(keys[7]!), register(-1, 10_001));
  const loaded = await open().load(keys);
  assert.equal(loaded.size, 5_000);
  keys.forEach((key, i) => assert.equal(loaded.get(keyId(key)), i % 7 === 0 ? json(-i / 7, 10_000 + i / 7) : json(i, i + 1)));
});

test('register store - a key is found in a page only at the start of a line', () => {
  const page = `6.a.x {"user":"6.a.y z"}\n6.a.y {"n":1}\n`;
  assert.equal(registerInPage(page, '6.a.y'), '{"n":1}');
  assert.equal(registerInPage(page, '6.a.x'), '{"user":"6.a.y z"}');
  assert.equal(registerInPage(page, '6.a'), undefined);
});
