import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import { defaultProvisionConfig, namesFor, provision } from '@segment/nats';
import { startNatsServer } from './nats-server.ts';

const logger = pino({ level: 'silent' });

test('nats-server harness - a kill -9 and restart keeps the provisioned streams and their messages', async () => {
  // Given a server of our own with a provisioned namespace and one stored event
  const server = await startNatsServer({ jetstream: true });
  try {
    assert.notEqual(server.port, 4222);
    const names = namesFor('harness');
    let nc = await connect({ servers: server.url });
    const created = await provision(nc, names, defaultProvisionConfig, logger);
    await jetstream(nc).publish(names.events.subject(7), '{"event":"e1"}', { msgID: 'e1' });
    await nc.close();

    // When it crashes and comes back
    const crashedPid = server.pid;
    await server.kill('SIGKILL');
    await server.restart();
    assert.notEqual(server.pid, crashedPid);

    // Then the streams, buckets and the message are still there, on the same URL
    nc = await connect({ servers: server.url });
    const report = await provision(nc, names, defaultProvisionConfig, logger);
    assert.deepEqual(report.map((item) => item.action), Array(created.length).fill('unchanged'));
    const jsm = await jetstreamManager(nc);
    assert.equal((await jsm.streams.info(names.events.stream)).state.messages, 1);
    await nc.close();
  } finally {
    await server.stop();
  }

  // And stop() removed its store
  await assert.rejects(access(server.storeDir));
});
