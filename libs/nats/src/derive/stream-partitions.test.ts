// Runs against the shared nats-server at 127.0.0.1:4222; every test takes its own namespace.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import { namesFor, type Names } from '../names.ts';
import { defaultProvisionConfig, deprovision, provision } from '../provision.ts';
import { StreamPartitions } from './stream-partitions.ts';

const url = process.env.SEGMENT_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const logger = pino({ level: 'silent' });
let nc: NatsConnection;
const used: Names[] = [];

before(async () => {
  nc = await connect({ servers: url });
});

after(async () => {
  for (const names of used) await deprovision(nc, names);
  await nc.close();
});

async function openPartition(vendor: number) {
  const names = namesFor(`t_${randomBytes(5).toString('hex')}`);
  used.push(names);
  await provision(nc, names, { ...defaultProvisionConfig, storage: 'memory' }, logger);
  const js = jetstream(nc);
  const partitions = new StreamPartitions(js, await jetstreamManager(nc), { stream: names.events.stream, subjectOf: names.events.subject, partitionOf: names.events.vendorOf, consumerOf: names.consumers.derive, logger });
  const source = await partitions.open(vendor, 1);
  const publish = (n: number) => Promise.all(Array.from({ length: n }, (_, i) => js.publish(names.events.subject(vendor), `{"n":${i}}`)));
  return { source, publish };
}

test('partition source - a short batch lingers for more, and returns as soon as enough arrived', async () => {
  const { source, publish } = await openPartition(3);
  try {
    await publish(1);
    let started = performance.now();
    const lone = await source.fetch(100, 1_000, { ms: 150, messages: 10 });
    assert.equal(lone.length, 1);
    assert.ok(performance.now() - started >= 140, 'waited out the linger for more');

    started = performance.now();
    const fetching = source.fetch(100, 1_000, { ms: 5_000, messages: 10 });
    await publish(12);
    const batch = await fetching;
    assert.ok(batch.length >= 10, `enough arrived: ${batch.length}`);
    assert.ok(performance.now() - started < 4_000, 'did not wait out the linger');

    const rest = await source.fetch(100, 200);
    assert.equal(batch.length + rest.length, 12, 'nothing lost between fetches');
  } finally {
    await source.close();
  }
});
