import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryRegisterStore } from './memory-ports.ts';
import { RegisterCache, keyId } from './register-cache.ts';

test('a register not worth storing is forgotten at flush, as if it had never been set', async () => {
  const store = new MemoryRegisterStore<{ added: boolean }>();
  const cache = new RegisterCache<{ added: boolean }>(store, 10, (value) => value.added);
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

test('a register written back reads the same afterwards, and can be changed and written again', async () => {
  const store = new MemoryRegisterStore<{ added: boolean; last: { event: string } }>();
  const cache = new RegisterCache(store, 10);
  const key = ['1', 'seg', 'alice'];
  const id = keyId(key);
  await cache.prefetch(new Map([[id, key]]));
  cache.set(id, key, { value: { added: true, last: { event: 'a' } }, seq: 1 });
  await cache.flush();
  assert.deepEqual(cache.get(id), { value: { added: true, last: { event: 'a' } }, seq: 1 });
  assert.deepEqual(cache.get(id), { value: { added: true, last: { event: 'a' } }, seq: 1 });
  cache.set(id, key, { value: { added: true, last: { event: 'b' } }, seq: 2 });
  await cache.flush();
  assert.deepEqual(store.register(id), { value: { added: true, last: { event: 'b' } }, seq: 2 });
  assert.equal(cache.get(id)?.seq, 2);
});

test('over capacity, the least recently used written-back registers are dropped at flush, and read back from the store', async () => {
  const store = new MemoryRegisterStore<number>();
  const cache = new RegisterCache<number>(store, 2);
  const keys = ['a', 'b', 'c'].map((user) => ['1', 'seg', user]);
  await cache.prefetch(new Map(keys.map((key) => [keyId(key), key])));
  keys.forEach((key, i) => cache.set(keyId(key), key, { value: i, seq: i + 1 }));
  await cache.flush();
  assert.equal(cache.size, 2);
  assert.equal(cache.get(keyId(keys[0]!)), undefined, 'the oldest was dropped');
  // Used again, b becomes the most recent: c goes next.
  await cache.prefetch(new Map([keys[1]!, keys[0]!].map((key) => [keyId(key), key])));
  assert.deepEqual(cache.get(keyId(keys[0]!)), { value: 0, seq: 1 }, 'read back from the store');
  await cache.flush();
  assert.deepEqual([keys[0]!, keys[1]!, keys[2]!].map((key) => cache.get(keyId(key))?.value), [0, 1, undefined]);
});
