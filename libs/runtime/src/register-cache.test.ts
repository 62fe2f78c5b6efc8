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

test('over capacity, the least recently used written-back registers are dropped at flush, and read back from the store', async () => {
  const store = new MemoryRegisterStore<number>();
  const written = new WrittenRegisters(2);
  const cache = new RegisterCache<number>(store, written);
  const keys = ['a', 'b', 'c'].map((user) => ['1', 'seg', user]);
  await cache.prefetch(new Map(keys.map((key) => [keyId(key), key])));
  keys.forEach((key, i) => cache.set(keyId(key), key, { value: i, seq: i + 1 }));
  await cache.flush();
  assert.equal(written.size, 2);
  const loads = store.loads;
  // Used again, b becomes the most recent: c goes next.
  await cache.prefetch(new Map([keys[1]!, keys[0]!].map((key) => [keyId(key), key])));
  assert.equal(store.loads, loads + 1, 'the oldest was dropped and read back from the store');
  assert.deepEqual(cache.get(keyId(keys[0]!)), { value: 0, seq: 1 });
  await cache.flush();
  assert.deepEqual(
    keys.map((key) => written.touch(keyId(key)) !== undefined),
    [true, true, false],
  );
});

test('partitions share one bound: registers another partition prefetched stay readable through its transaction when a commit trims them', async () => {
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
  assert.equal(written.touch(keyId(held)), undefined, 'trimmed by the other partition\'s commit');
  assert.deepEqual(first.get(keyId(held)), { value: 7, seq: 3 }, 'still held for the transaction that prefetched it');
});

test('registers set while a flush writes go to the next flush; a failed flush leaves its registers for the next one', async () => {
  const store = new MemoryRegisterStore<string>();
  const cache = new RegisterCache<string>(store, new WrittenRegisters(10));
  const alice = ['1', 'seg', 'alice'];
  const bob = ['1', 'seg', 'bob'];
  const [aliceId, bobId] = [keyId(alice), keyId(bob)];
  await cache.prefetch(new Map([[aliceId, alice], [bobId, bob]]));
  cache.set(aliceId, alice, { value: 'a1', seq: 1 });
  // Given a save that waits until it is let go
  const save = store.save.bind(store);
  let release!: () => void;
  store.save = async (entries) => {
    await new Promise<void>((resolve) => (release = resolve));
    return save(entries);
  };
  const first = cache.flush();
  // When a transaction reads registers while the flush writes, and the flush ends before it applies its events
  await cache.prefetch(new Map([[aliceId, alice], [bobId, bob]]));
  await assert.rejects(cache.flush(), /a register flush is under way/);
  release();
  await first;
  assert.equal(cache.get(aliceId)?.value, 'a1', 'a register written meanwhile still reads as set');
  cache.set(aliceId, alice, { value: 'a2', seq: 2 });
  cache.set(bobId, bob, { value: 'b2', seq: 2 });
  // Then the flush wrote what was set before it, and the newer registers wait for the next one
  assert.equal(store.register(aliceId)?.value, 'a1');
  assert.equal(store.register(bobId), undefined);
  assert.equal(cache.get(aliceId)?.value, 'a2');
  assert.equal(cache.dirtyCount, 2);
  // And a flush that fails keeps them for the next flush
  store.save = async () => {
    throw new Error('stream unavailable');
  };
  await assert.rejects(cache.flush(), /stream unavailable/);
  assert.equal(cache.dirtyCount, 2);
  store.save = save;
  await cache.flush();
  assert.deepEqual([store.register(aliceId)?.value, store.register(bobId)?.value], ['a2', 'b2']);
});
