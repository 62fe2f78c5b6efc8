// Runs against the shared nats-server at 127.0.0.1:4222 (2.9.10); every test takes its own namespace.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { pino } from 'pino';
import { namesFor, type Names } from './names.ts';
import {
  defaultProvisionConfig,
  deprovision,
  formatProvisionItem,
  provision,
  ProvisionError,
  registerBucketHistory,
  type ProvisionConfig,
  unappliedSettings,
} from './provision.ts';

const url = process.env.SEGMENT_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const logger = pino({ level: 'silent' });
const memory: ProvisionConfig = { ...defaultProvisionConfig, storage: 'memory' };

let nc: NatsConnection;
let jsm: JetStreamManager;
const used: Names[] = [];

function freshNames(): Names {
  const names = namesFor(`t_${randomBytes(5).toString('hex')}`);
  used.push(names);
  return names;
}

function allStreams(names: Names): string[] {
  return [
    names.events.stream,
    names.derived.memberships.stream,
    names.derived.profiles.stream,
    names.derived.toggles.stream,
    names.deadLetters.stream,
    names.registerJournal.stream,
    `KV_${names.buckets.toggleRegisters}`,
    `KV_${names.buckets.pushProfileRegisters}`,
    `KV_${names.buckets.checkpoints}`,
  ];
}

async function existing(names: Names): Promise<string[]> {
  const found: string[] = [];
  for (const stream of allStreams(names)) {
    const info = await jsm.streams.info(stream).catch(() => undefined);
    if (info) found.push(stream);
  }
  return found;
}

before(async () => {
  nc = await connect({ servers: url, name: 'provision.test' });
  jsm = await jetstreamManager(nc);
});

after(async () => {
  for (const names of used) await deprovision(nc, names);
  await nc.close();
});

describe('provision', () => {
  test('provision - creates every stream and bucket, then a second run changes nothing', async () => {
    const names = freshNames();

    const first = await provision(nc, names, defaultProvisionConfig, logger);
    assert.deepEqual(first.map(formatProvisionItem), [
      `stream ${names.events.stream}: created`,
      `stream ${names.derived.memberships.stream}: created`,
      `stream ${names.derived.profiles.stream}: created`,
      `stream ${names.derived.toggles.stream}: created`,
      `stream ${names.deadLetters.stream}: created`,
      `stream ${names.registerJournal.stream}: created`,
      `bucket ${names.buckets.toggleRegisters}: created`,
      `bucket ${names.buckets.pushProfileRegisters}: created`,
      `bucket ${names.buckets.checkpoints}: created`,
    ]);

    const second = await provision(nc, names, defaultProvisionConfig, logger);
    assert.equal(second.length, 9);
    assert.deepEqual(second.filter((item) => item.action !== 'unchanged'), []);
  });

  test('provision - the server holds the requested settings', async () => {
    const names = freshNames();
    await provision(nc, names, defaultProvisionConfig, logger);

    const events = (await jsm.streams.info(names.events.stream)).config;
    assert.deepEqual(events.subjects, [names.events.subjects]);
    assert.equal(events.storage, 'file');
    assert.equal(events.retention, 'limits');
    assert.equal(events.discard, 'old');
    assert.equal(events.num_replicas, 1);
    assert.equal(events.duplicate_window, 600_000_000_000);
    assert.equal(events.max_msg_size, 1_048_576);

    const toggles = (await jsm.streams.info(names.derived.toggles.stream)).config;
    assert.deepEqual(toggles.subjects, [names.derived.toggles.subjects]);
    const dlq = (await jsm.streams.info(names.deadLetters.stream)).config;
    assert.deepEqual(dlq.subjects, [names.deadLetters.subjects]);

    const bucket = (await jsm.streams.info(`KV_${names.buckets.checkpoints}`)).config;
    assert.deepEqual(bucket.subjects, [`$KV.${names.buckets.checkpoints}.>`]);
    assert.equal(bucket.max_msgs_per_subject, 1);
    assert.equal(bucket.allow_direct, true);
    assert.equal((await jsm.streams.info(`KV_${names.buckets.toggleRegisters}`)).config.max_msgs_per_subject, registerBucketHistory);
    assert.equal(bucket.storage, 'file');
  });

  test('provision - the buckets work as KV buckets: registers keep older versions, checkpoints only the current one', async () => {
    const names = freshNames();
    await provision(nc, names, memory, logger);

    const registers = await new Kvm(nc).open(names.buckets.toggleRegisters);
    await registers.put('7.seg.usr', 'one');
    await registers.put('7.seg.usr', 'two');
    assert.equal((await registers.get('7.seg.usr'))?.string(), 'two');
    const keys: string[] = [];
    for await (const key of await registers.keys()) keys.push(key);
    assert.deepEqual(keys, ['7.seg.usr']);
    const registerStatus = await registers.status();
    assert.equal(registerStatus.history, registerBucketHistory);
    assert.equal(registerStatus.values, 2);

    const checkpoints = await new Kvm(nc).open(names.buckets.checkpoints);
    await checkpoints.put('7', '1');
    await checkpoints.put('7', '2');
    assert.equal((await checkpoints.get('7'))?.string(), '2');
    const checkpointStatus = await checkpoints.status();
    assert.equal(checkpointStatus.history, 1);
    assert.equal(checkpointStatus.values, 1);
  });

  test('provision - changed mutable settings are updated and reported with their differences', async () => {
    // Given a namespace provisioned with other settings, and a stream whose subjects were edited by hand
    const names = freshNames();
    await provision(nc, names, { ...memory, duplicateWindowMs: 120_000, maxMessageBytes: 4096 }, logger);
    await jsm.streams.update(names.deadLetters.stream, { subjects: [`${names.namespace}.elsewhere.>`] });

    // When it is provisioned with the defaults
    const report = await provision(nc, names, memory, logger);

    // Then the five streams are updated, the buckets untouched
    const events = report.find((item) => item.name === names.events.stream);
    assert.equal(events?.action, 'updated');
    assert.deepEqual(events?.changes, ['duplicate_window 120s -> 600s', 'max_msg_size 4096 -> 1048576']);
    const dlq = report.find((item) => item.name === names.deadLetters.stream);
    assert.deepEqual(dlq?.changes, [
      `subjects [${names.namespace}.elsewhere.>] -> [${names.deadLetters.subjects}]`,
      'duplicate_window 120s -> 600s',
      'max_msg_size 4096 -> 1048576',
    ]);
    assert.deepEqual(
      report.filter((item) => item.kind === 'bucket').map((item) => item.action),
      ['unchanged', 'unchanged', 'unchanged'],
    );
    assert.equal((await jsm.streams.info(names.events.stream)).config.duplicate_window, 600_000_000_000);
    assert.deepEqual((await jsm.streams.info(names.deadLetters.stream)).config.subjects, [names.deadLetters.subjects]);

    // And a further run is quiet
    assert.deepEqual((await provision(nc, names, memory, logger)).filter((item) => item.action !== 'unchanged'), []);
  });

  test("provision - a stage's provisioning keeps what segment setup set, and only creates what is missing", async () => {
    // Given a namespace set up with a 2-minute duplicate window, whose dead-letter stream was deleted
    const names = freshNames();
    await provision(nc, names, { ...memory, duplicateWindowMs: 120_000 }, logger);
    await jsm.streams.delete(names.deadLetters.stream);

    // When a stage provisions it with the defaults, keeping what exists
    const report = await provision(nc, names, memory, logger, { existing: 'keep' });

    // Then the events stream keeps its window, reported kept with the difference, and the missing stream is created
    assert.deepEqual(
      report.find((item) => item.name === names.events.stream),
      { kind: 'stream', name: names.events.stream, action: 'kept', changes: ['duplicate_window 120s -> 600s'] },
    );
    assert.equal((await jsm.streams.info(names.events.stream)).config.duplicate_window, 120_000_000_000);
    assert.equal(report.find((item) => item.name === names.deadLetters.stream)?.action, 'created');
    assert.equal((await jsm.streams.info(names.deadLetters.stream)).config.duplicate_window, 600_000_000_000);
  });

  test('provision - a bucket whose history was changed by hand is set back to 1', async () => {
    const names = freshNames();
    await provision(nc, names, memory, logger);
    await jsm.streams.update(`KV_${names.buckets.checkpoints}`, { max_msgs_per_subject: 5 });

    const report = await provision(nc, names, memory, logger);

    const checkpoints = report.find((item) => item.name === names.buckets.checkpoints);
    assert.deepEqual(checkpoints, { kind: 'bucket', name: names.buckets.checkpoints, action: 'updated', changes: ['max_msgs_per_subject 5 -> 1'] });
  });

  test('provision - a different storage type fails, says how to fix it, and changes nothing', async () => {
    // Given an events stream someone created in memory
    const names = freshNames();
    await jsm.streams.add({ name: names.events.stream, subjects: [names.events.subjects], storage: 'memory' });

    // When file storage is provisioned
    await assert.rejects(provision(nc, names, defaultProvisionConfig, logger), (error: unknown) => {
      assert.ok(error instanceof ProvisionError);
      assert.equal(error.code, 'SEGMENT_PROVISION_CONFLICT');
      assert.match(error.message, new RegExp(`stream ${names.events.stream} exists`));
      assert.match(error.message, /storage is memory but file is requested/);
      assert.match(error.message, new RegExp(`nats stream rm ${names.events.stream}`));
      assert.match(error.message, /another namespace/);
      return true;
    });

    // Then nothing else was created
    assert.deepEqual(await existing(names), [names.events.stream]);
  });

  test('provision - a different retention policy fails', async () => {
    const names = freshNames();
    await jsm.streams.add({ name: names.derived.profiles.stream, subjects: [names.derived.profiles.subjects], storage: 'memory', retention: 'workqueue' });

    await assert.rejects(provision(nc, names, memory, logger), /retention is workqueue but limits is requested/);
  });

  test('provision - replicas above 1 on a standalone server fail before anything is created', async () => {
    const names = freshNames();

    await assert.rejects(provision(nc, names, { ...memory, replicas: 3 }, logger), (error: unknown) => {
      assert.ok(error instanceof ProvisionError);
      assert.match(error.message, /replicas 3 needs a JetStream cluster/);
      return true;
    });
    assert.deepEqual(await existing(names), []);
  });

  test('provision - an invalid config is rejected with every problem named', async () => {
    const names = freshNames();
    await assert.rejects(
      provision(nc, names, { replicas: 0, duplicateWindowMs: -1, maxMessageBytes: 2 ** 40, storage: 'disk' as 'file' }, logger),
      /replicas must be an integer from 1 to 5, got 0; duplicateWindowMs must be a positive integer, got -1; maxMessageBytes must be .*; storage must be "file" or "memory"/,
    );
  });
});

describe('unappliedSettings', () => {
  test('unappliedSettings - names the settings the server dropped without a word', async () => {
    // Given a stream created with settings newer than the server (2.9.10 has no per-message TTL)
    const names = freshNames();
    const requested = {
      name: names.events.stream,
      subjects: [names.events.subjects],
      storage: 'memory' as const,
      duplicate_window: 60_000_000_000,
      allow_msg_ttl: true,
      subject_delete_marker_ttl: 5_000_000_000,
    };
    const info = await jsm.streams.add({ ...requested });

    // Then the create succeeded, and only the comparison tells what was lost
    const version = nc.info?.version ?? '';
    const problems = unappliedSettings(requested, info);
    if (/^2\.(9|10)\./.test(version)) {
      assert.deepEqual(problems, [
        'allow_msg_ttl requested true, server reports (not reported)',
        'subject_delete_marker_ttl requested 5s, server reports (not reported)',
      ]);
    }
    assert.deepEqual(unappliedSettings({ subjects: [names.events.subjects], duplicate_window: 60_000_000_000 }, info), []);
    assert.deepEqual(unappliedSettings({ num_replicas: 3 }, { ...info, config: { ...info.config, num_replicas: 3 } }), [
      'num_replicas 3 requested, but the server runs without a JetStream cluster and keeps one copy',
    ]);
  });
});

describe('deprovision', () => {
  test('deprovision - deletes every stream and bucket, and a second call is fine', async () => {
    const names = freshNames();
    await provision(nc, names, memory, logger);
    assert.equal((await existing(names)).length, 9);

    assert.deepEqual(await deprovision(nc, names), allStreams(names));
    assert.deepEqual(await existing(names), []);
    assert.deepEqual(await deprovision(nc, names), []);
  });
});
