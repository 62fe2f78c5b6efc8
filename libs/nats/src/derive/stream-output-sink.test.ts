import assert from 'node:assert/strict';
import test from 'node:test';
import { OutputTooLargeError } from '@segment/runtime';
import { namesFor } from '../names.ts';
import type { PipelinedPublisher } from '../publisher.ts';
import { StreamOutputSink, maxOutputBytes } from './stream-output-sink.ts';

/** Records what would be published; acks at once. */
function recordingPublisher() {
  const published: { subject: string; body: Uint8Array; msgId?: string }[] = [];
  const publisher = {
    publish: async (subject: string, body: Uint8Array, options: { msgId?: string }) => void published.push({ subject, body, msgId: options.msgId }),
  } as unknown as PipelinedPublisher;
  return { publisher, published };
}

test('stream output sink - one NDJSON message per collection; an output that cannot fit rejects and publishes nothing', async () => {
  const names = namesFor('t_sink');
  const { publisher, published } = recordingPublisher();
  const sink = new StreamOutputSink(names, publisher);
  const provenance = { partition: 7, firstSeq: 10, lastSeq: 12 };

  await sink.publish([{ collection: 'segment/toggles', documents: [{ a: 1 }, { a: 2 }] }], provenance);
  assert.equal(published.length, 1);
  assert.equal(published[0]!.subject, names.derived.toggles.subject(7));
  assert.equal(new TextDecoder().decode(published[0]!.body), '{"a":1}\n{"a":2}');
  assert.equal(published[0]!.msgId, 'toggles:7:10-12');

  // Too large: a rejected promise (not a throw), before anything of the transaction is published.
  const large = { collection: 'segment/memberships', documents: [{ text: 'x'.repeat(maxOutputBytes) }] };
  const publishing = sink.publish([{ collection: 'segment/toggles', documents: [{ a: 1 }] }, large], provenance);
  await assert.rejects(publishing, OutputTooLargeError);
  assert.equal(published.length, 1);
});
