import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryRegisterStore } from './memory-ports.ts';
import { RegisterCache, keyId } from './register-cache.ts';

test('a register not worth storing is forgotten at flush, as if it had never been set', async () => {
  const store = new MemoryRegisterStore<{ added: boolean }>();
  const cache = new RegisterCache(store, 10, (value) => value.added);
  const kept = ['1', 'seg', 'kept'];
  const forgotten = ['1', 'seg', 'forgotten'];
  await cache.prefetch(new Map([kept, forgotten].map((key) => [keyId(key), key])));
  cache.set(keyId(kept), kept, { value: { added: true }, seq: 1 });
  cache.set(keyId(forgotten), forgotten, { value: { added: false }, seq: 2 });
  await cache.flush();
  assert.equal(cache.size, 1);
  assert.deepEqual(cache.get(keyId(kept)), { value: { added: true }, seq: 1 });
  assert.equal(cache.get(keyId(forgotten)), undefined);
  const stored = await store.load([kept, forgotten]);
  assert.deepEqual([...stored.keys()], [keyId(kept)]);
});
