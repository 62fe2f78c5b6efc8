import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '@segment/model';
import { MemoryEventSink, publishAll, type EventSink, type IngestCallback } from './sink.ts';

const event = (id: number): Event => ({
  event: `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`,
  timestamp: '2021-03-19T10:00:00-04:00',
  user: `user-${id}`,
  segment: { vendor: 1, name: 'seg' },
});
const documents = (ids: readonly number[]) => ids.map((id, index) => ({ index: index * 2, event: event(id) }));

test('publishAll - sequences in request order, duplicates counted, nothing to wait for when empty', async () => {
  const sink = new MemoryEventSink();
  assert.deepEqual(await publishAll(sink, []), { sequences: [], duplicates: 0, failed: 0, failure: undefined });
  const batch = await publishAll(sink, documents([1, 2, 1, 3]));
  assert.deepEqual(batch, { sequences: [1, 2, 1, 3], duplicates: 1, failed: 0, failure: undefined });
});

test('publishAll - acks settling in any order; the failure reported is the lowest index', async () => {
  const held: (() => void)[] = [];
  const sink: EventSink = {
    subjectOf: () => 'segment.events.1',
    publish(e: Event, _source: Uint8Array | undefined, settled: IngestCallback) {
      const id = Number(e.event.slice(-12));
      // Settled in reverse order, once every publish was made; ids over 10 fail.
      held.push(() => (id > 10 ? settled(new Error(`no stream for ${id}`), undefined) : settled(undefined, { seq: 100 + id, duplicate: false })));
      if (held.length === 5) for (const settle of held.reverse()) settle();
    },
  };
  const batch = await publishAll(sink, documents([1, 12, 3, 11, 5]));
  assert.equal(batch.failed, 2);
  assert.deepEqual({ index: batch.failure?.index, message: batch.failure?.error.message }, { index: 2, message: 'no stream for 12' });
  assert.deepEqual([batch.sequences[0], batch.sequences[2], batch.sequences[4]], [101, 103, 105]);
});

test('publishAll - a sink that settles before publish returns', async () => {
  const sink: EventSink = { subjectOf: () => 's', publish: (e, _source, settled) => settled(undefined, { seq: Number(e.event.slice(-12)), duplicate: false }) };
  assert.deepEqual((await publishAll(sink, documents([7, 8]))).sequences, [7, 8]);
});
