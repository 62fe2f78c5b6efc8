// Runs against the shared nats-server at 127.0.0.1:4222; every test takes its own namespace.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { pino } from 'pino';
import { keyId, type StoredRegister } from '@segment/runtime';
import { encodeKey } from '../kv-keys.ts';
import { namesFor, type Names } from '../names.ts';
import { defaultProvisionConfig, deprovision, provision } from '../provision.ts';
import { PipelinedPublisher } from '../publisher.ts';
import { KvRegisterStore } from './kv-register-store.ts';

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
  const open = (connections: { moves?: { nc: NatsConnection; publisher: PipelinedPublisher }; reads?: PipelinedPublisher } = {}) =>
    new KvRegisterStore({ nc, bucket, publisher, ...connections, logger: pino({ level: 'silent' }), journal, journalBytes });
  const journalMessages = async (partition: string) => {
    const info = await (await jetstreamManager(nc)).streams.info(journal.stream, { subjects_filter: journal.subject(partition) });
    return info.state.subjects?.[journal.subject(partition)] ?? 0;
  };
  const inBucket = async (key: (string | number)[]) => (await kv.get(encodeKey(key)))?.json<Register>();
  return { open, journalMessages, inBucket, kv };
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
  const { open, journalMessages, kv } = await fixture();
  const key = [8, 'planes', 'alice'];
  const onlyInBucket = [8, 'planes', 'bob'];
  // As an earlier emptying of the journal left them.
  await kv.put(encodeKey(key), json(1, 5));
  await kv.put(encodeKey(onlyInBucket), json(7, 4));
  await open().save([{ key, json: json(2, 6) }]);
  assert.equal(await journalMessages('8'), 1);
  const loaded = await open().load([key, onlyInBucket]);
  assert.deepEqual(loaded.get(keyId(key)), json(2, 6));
  assert.deepEqual(loaded.get(keyId(onlyInBucket)), json(7, 4));
});

test('register store - a key deleted from the bucket reads as no register', async () => {
  const { open, kv } = await fixture();
  const kept = [4, 'cars', 'alice'];
  const deleted = [4, 'cars', 'bob'];
  await kv.put(encodeKey(kept), json(1, 5));
  await kv.put(encodeKey(deleted), json(2, 6));
  await kv.delete(encodeKey(deleted));
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

test('register store - the journals of all partitions share one budget: past it, the largest moves', async () => {
  const { open, journalMessages, inBucket } = await fixture(4_000);
  const store = open();
  const small = Array.from({ length: 30 }, (_, i) => [5, 'boats', `user-${i}`]);
  const large = Array.from({ length: 60 }, (_, i) => [6, 'boats', `user-${i}`]);
  await store.save(small.map((key, i) => ({ key, json: json(i, 100 + i) })));
  await store.save(large.map((key, i) => ({ key, json: json(i, 200 + i) })));
  await store.settle();
  assert.equal(await journalMessages('6'), 0, 'the largest journal moved');
  assert.deepEqual(await inBucket(large[59]!), register(59, 259));
  assert.equal(await journalMessages('5'), 1, 'the smaller one stays journaled: the two are under the budget again');
  assert.equal(await inBucket(small[0]!), undefined);
  const loaded = await open().load([...small, ...large]);
  assert.equal(loaded.size, 90);
});

test('register store - given a connection for moves, a journal moves to the bucket over it', async () => {
  const { open, journalMessages, inBucket } = await fixture(2_000);
  const movesConnection = await connect({ servers: url });
  const movesPublisher = new PipelinedPublisher(movesConnection);
  try {
    const store = open({ moves: { nc: movesConnection, publisher: movesPublisher } });
    const keys = Array.from({ length: 50 }, (_, i) => [2, 'boats', `user-${i}`]);
    await store.save(keys.map((key, i) => ({ key, json: json(i, 100 + i) })));
    await store.settle();
    assert.equal(await journalMessages('2'), 0);
    assert.deepEqual(await inBucket(keys[49]!), register(49, 149));
    assert.ok(movesConnection.stats().outMsgs >= 50, 'the registers went over the moves connection');
  } finally {
    await movesPublisher.close();
    await movesConnection.close();
  }
});

test('register store - given a connection for reads, registers are read from the bucket over it', async () => {
  const { open, kv } = await fixture();
  const readsConnection = await connect({ servers: url });
  const reads = new PipelinedPublisher(readsConnection);
  try {
    const keys = Array.from({ length: 10 }, (_, i) => [1, 'boats', `user-${i}`]);
    for (const [i, key] of keys.entries()) await kv.put(encodeKey(key), json(i, 100 + i));
    const store = open({ reads });
    const loaded = await store.load(keys);
    assert.equal(loaded.size, 10);
    assert.deepEqual(loaded.get(keyId(keys[9]!)), json(9, 109));
    assert.equal(store.stats.bucketReads, 10);
    assert.equal(readsConnection.stats().outMsgs, 10, 'a direct get per register, over the reads connection');
  } finally {
    await reads.close();
    await readsConnection.close();
  }
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
