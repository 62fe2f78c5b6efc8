import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { collections } from '@segment/model';
import { FencedError, Projector, type DerivedMessage, type MessageSource, type ProjectionPosition, type ProjectionStore, type SourceMessage } from './index.ts';

const logger = pino({ level: 'silent' });
const membership = (user: string, member: boolean, last: string) => ({ segment: { vendor: 1, name: 'seg-1' }, user, last, member });
type Membership = ReturnType<typeof membership>;

/** Derived messages of partition 1, each a whole transaction: its source range and documents. */
function derived(...transactions: { range: [number, number]; documents: Membership[] }[]) {
  const decoded = new Map<number, DerivedMessage>();
  const source: SourceMessage[] = transactions.map(({ range, documents }, i) => {
    decoded.set(i + 1, { provenance: { partition: 1, firstSeq: range[0], lastSeq: range[1] }, documents });
    return { seq: i + 1, subject: 'segment.memberships.1', data: new Uint8Array() };
  });
  return { source, decoded };
}

/** Rows by user, the last position; `fenceAfter` commits succeed, then it answers as if taken over. */
class MemoryStore implements ProjectionStore<Membership> {
  readonly rows = new Map<string, Membership>();
  position: ProjectionPosition = { streamSeq: 0, checkpoints: new Map() };
  #fenceAfter: number;
  constructor(fenceAfter = Infinity) {
    this.#fenceAfter = fenceAfter;
  }
  async acquire() {
    return this.position;
  }
  async commit(documents: readonly Membership[], position: ProjectionPosition) {
    if (this.#fenceAfter-- <= 0) throw new FencedError('taken over');
    for (const document of documents) this.rows.set(document.user, document);
    this.position = position;
  }
}

function sourceOf(messages: readonly SourceMessage[]): (startSeq: number) => Promise<MessageSource> {
  return async (startSeq) => {
    let next = Math.max(0, messages.findIndex((m) => m.seq >= startSeq));
    if (messages.every((m) => m.seq < startSeq)) next = messages.length;
    return {
      async fetch(max: number) {
        const batch = messages.slice(next, next + max);
        next += batch.length;
        if (batch.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        return batch;
      },
      async ack() {},
      async close() {},
    };
  };
}

async function project(messages: ReturnType<typeof derived>, maxMessages: number, store = new MemoryStore()) {
  const projector = new Projector({
    name: 'project_memberships',
    schema: 'membership',
    key: collections['segment/memberships'].key,
    store,
    decode: (message) => messages.decoded.get(message.seq)!,
    open: sourceOf(messages.source),
    logger,
    maxMessages,
    idleFetchMs: 5,
  });
  await projector.start();
  const deadline = Date.now() + 5_000;
  while (store.position.streamSeq < messages.source.length && !projector.fenced && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  await projector.stop();
  return { store, projector };
}

for (const maxMessages of [32, 1]) {
  test(`projector - a replayed transaction is dropped, in one fetch or across fetches (max ${maxMessages} a fetch)`, async () => {
    // Given transactions 1-10 and 11-20 of a key, then 1-10 again and an overlapping 5-20 (a derive crash)
    const messages = derived(
      { range: [1, 10], documents: [membership('u1', true, '2021-03-19T10:00:00Z')] },
      { range: [11, 20], documents: [membership('u1', false, '2021-03-19T11:00:00Z'), membership('u2', true, '2021-03-19T11:00:00Z')] },
      { range: [1, 10], documents: [membership('u1', true, '2021-03-19T10:00:00Z')] },
      { range: [5, 20], documents: [membership('u1', false, '2021-03-19T11:00:00Z')] },
    );
    // When the projector reads them, then the replay does not bring the older status back
    const { store, projector } = await project(messages, maxMessages);
    assert.equal(store.rows.get('u1')?.member, false);
    assert.equal(store.rows.get('u2')?.member, true);
    assert.equal(store.position.checkpoints.get(1), 20);
    assert.equal(projector.stats.skipped, 2);
  });
}

test('projector - once fenced it stops without committing, and says so', async () => {
  const messages = derived(
    { range: [1, 10], documents: [membership('u1', true, '2021-03-19T10:00:00Z')] },
    { range: [11, 20], documents: [membership('u2', true, '2021-03-19T10:00:00Z')] },
  );
  const { store, projector } = await project(messages, 1, new MemoryStore(1));
  assert.ok(projector.fenced instanceof FencedError);
  assert.deepEqual([...store.rows.keys()], ['u1']);
  assert.equal(store.position.streamSeq, 1);
});
