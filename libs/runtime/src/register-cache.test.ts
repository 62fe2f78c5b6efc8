import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryRegisterStore } from './memory-ports.ts';
import { RegisterCache, WrittenRegisters, keyId } from './register-cache.ts';

test('a register not worth storing is forgotten at flush, as if it had never been set', async () => {
  const store = new MemoryRegisterStore<{ added: boolean }>();
  const cache = new RegisterCache<{ added: boolean }>(store, new WrittenRegisters(10), (value) => value.added);
  const kept = ['1', 'seg', 'kept'];
  const forgotten = ['1', 'seg', 'forgotten'];
  await cache.prefetch(new Map([kept, forgotten].map((key) => [keyId(key), key])));
  cache.set(keyId(kept), kept, { value: { added: true }, seq: 1 });
  cache.set(keyId(forgotten), forgotten, { value: { added: false }, seq: 2 });
  await cache.flush();
  const loads = store.loads;
  await cache.prefetch(new Map([kept, forgotten].map((key) => [keyId(key), key])));
  assert.equal(store.loads, loads + 1, 'the kept one is cached, the forgotten one is looked for');
  assert.deepEqual(cache.get(keyId(kept)), { value: { added: true }, seq: 1 });
  assert.equal(cache.get(keyId(forgotten)), undefined);
  const stored = await store.load([kept, forgotten]);
  assert.deepEqual([...stored.keys()], [keyId(kept)]);
});

test('a register written back reads the same afterwards, and can be changed and written again', async () => {
  const store = new MemoryRegisterStore<{ added: boolean; last: { event: string } }>();
  const cache = new RegisterCache(store, new WrittenRegisters(10));
  const key = ['1', 'seg', 'alice'];
  const id = keyId(key);
  await cache.prefetch(new Map([[id, key]]));
  cache.set(id, key, { value: { added: true, last: { event: 'a' } }, seq: 1 });
  await cache.flush();
  const loads = store.loads;
  await cache.prefetch(new Map([[id, key]]));
  assert.deepEqual(cache.get(id), { value: { added: true, last: { event: 'a' } }, seq: 1 });
  assert.deepEqual(cache.get(id), { value: { added: true, last: { event: 'a' } }, seq: 1 });
  cache.set(id, key, { value: { added: true, last: { event: 'b' } }, seq: 2 });
  await cache.flush();
  assert.deepEqual(store.register(id), { value: { added: true, last: { event: 'b' } }, seq: 2 });
  await cache.prefetch(new Map([[id, key]]));
  assert.equal(cache.get(id)?.seq, 2);
  assert.equal(store.loads, loads, 'read from memory after its first load');
});

test('over capacity, a written-back register is evicted and read back from the store', async () => {
  const store = new MemoryRegisterStore<number>();
  const written = new WrittenRegisters(2);
  const cache = new RegisterCache<number>(store, written);
  const keys = ['a', 'b', 'c'].map((user) => ['1', 'seg', user]);
  await cache.prefetch(new Map(keys.map((key) => [keyId(key), key])));
  keys.forEach((key, i) => cache.set(keyId(key), key, { value: i, seq: i + 1 }));
  await cache.flush();
  assert.equal(written.size, 2);
  // All three were just used: the hand evicts in insertion order, the first one.
  assert.deepEqual(keys.map((key) => written.touch(keyId(key)) !== undefined), [false, true, true]);
  const loads = store.loads;
  await cache.prefetch(new Map([[keyId(keys[0]!), keys[0]!]]));
  assert.equal(store.loads, loads + 1, 'the evicted one was read back from the store');
  assert.deepEqual(cache.get(keyId(keys[0]!)), { value: 0, seq: 1 });
  assert.equal(written.size, 2);
});

test('written registers: a register used since the hand last passed it gets a second chance; a deleted one frees its slot', () => {
  const written = new WrittenRegisters(3);
  for (const id of ['a', 'b', 'c']) written.set(id, `"${id}"`);
  written.set('d', '"d"'); // every bit set: the hand clears them all, then evicts a
  assert.equal(written.touch('a'), undefined);
  assert.equal(written.touch('c'), '"c"'); // c used again; b not
  written.set('e', '"e"');
  assert.deepEqual(['b', 'c', 'd', 'e'].map((id) => written.touch(id)), [undefined, '"c"', '"d"', '"e"']);
  written.delete('d');
  assert.equal(written.size, 2);
  written.set('f', '"f"'); // into d's slot: nothing evicted
  assert.deepEqual(['c', 'e', 'f'].map((id) => written.touch(id)), ['"c"', '"e"', '"f"']);
  written.set('e', '"e2"'); // a rewrite keeps its slot
  assert.equal(written.size, 3);
  assert.equal(written.touch('e'), '"e2"');
  assert.throws(() => new WrittenRegisters(0), RangeError);
});

test('partitions share one bound: registers another partition prefetched stay readable through its transaction when a commit evicts them', async () => {
  const store = new MemoryRegisterStore<number>();
  const written = new WrittenRegisters(2);
  const [first, second] = [new RegisterCache<number>(store, written), new RegisterCache<number>(store, written)];
  const held = ['1', 'seg', 'alice'];
  await store.save([{ key: held, json: JSON.stringify({ value: 7, seq: 3 }) }]);
  await first.prefetch(new Map([[keyId(held), held]]));
  const others = ['a', 'b', 'c'].map((user) => ['2', 'seg', user]);
  await second.prefetch(new Map(others.map((key) => [keyId(key), key])));
  others.forEach((key, i) => second.set(keyId(key), key, { value: i, seq: i + 1 }));
  await second.flush();
  assert.equal(written.size, 2, 'one bound for both partitions');
  assert.equal(written.touch(keyId(held)), undefined, 'evicted by the other partition\'s commit');
  assert.deepEqual(first.get(keyId(held)), { value: 7, seq: 3 }, 'still held for the transaction that prefetched it');
});
