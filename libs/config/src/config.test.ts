import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from './index.ts';

test('config - sensible defaults for a local machine', () => {
  const config = loadConfig({});
  assert.equal(config.natsUrl, 'nats://127.0.0.1:4222');
  assert.equal(config.namespace, 'segment');
  assert.equal(config.replicas, 1);
  assert.ok(Object.isFrozen(config));
});

test('config - flags override the environment, and bad values fail fast with the variable named', () => {
  assert.equal(loadConfig({ SEGMENT_NAMESPACE: 'a' }, { namespace: 'b' }).namespace, 'b');
  assert.equal(loadConfig({ SEGMENT_NAMESPACE: 'a' }, { namespace: undefined }).namespace, 'a');
  assert.throws(() => loadConfig({ SEGMENT_REPLICAS: 'three' }), (e: unknown) => e instanceof ConfigError && /SEGMENT_REPLICAS/.test(e.message));
  assert.throws(() => loadConfig({ SEGMENT_REPLICA_INDEX: '2', SEGMENT_REPLICA_COUNT: '2' }), /below SEGMENT_REPLICA_COUNT/);
});
