import { DeliverPolicy, jetstream, type JsMsg, type OrderedConsumerOptions } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { managerForReads } from './connect.ts';

export interface StoredMessage {
  seq: number;
  subject: string;
  headers: Record<string, string>;
  data: Uint8Array;
}

export interface ReadStreamOptions {
  pageSize: number;
  /** Only this subject's messages. */
  subject?: string;
  /** From this stream sequence on (default: the first message). */
  fromSeq?: number;
  /**
   * Only the last message of each subject, headers only (a KV bucket's keys, say). nats.js's
   * `kv.keys()` takes an idle heartbeat for the end of the list, and a client busy enough to answer
   * the server's flow control late gets one mid-list: a restarted derivation worker then took
   * registers stored in the bucket for absent ones (whole partitions of them, in about one 3-node
   * cluster test in twenty). Read here, a list that stops short fails instead.
   */
  lastPerSubject?: boolean;
}

/**
 * A stream's messages in order, in pages of at most `pageSize`, up to its last sequence when
 * called: messages stored meanwhile are not read (a DLQ replay re-dead-lettering does not loop).
 * Read with an ordered consumer, deleted at the end.
 */
export async function* readStreamPages(nc: NatsConnection, stream: string, options: ReadStreamOptions): AsyncGenerator<JsMsg[]> {
  const { pageSize, subject, fromSeq, lastPerSubject } = options;
  const lastSeq = await lastSequence(nc, stream, subject);
  if (lastSeq === 0 || (fromSeq ?? 0) > lastSeq) return;
  const consumerOptions: Partial<OrderedConsumerOptions> = {
    ...(subject === undefined ? {} : { filter_subjects: subject }),
    ...(fromSeq === undefined ? {} : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq }),
    ...(lastPerSubject ? { deliver_policy: DeliverPolicy.LastPerSubject, headers_only: true } : {}),
  };
  const consumer = await jetstream(nc).consumers.get(stream, consumerOptions);
  try {
    for (;;) {
      const page: JsMsg[] = [];
      let done = false;
      for await (const message of await consumer.fetch({ max_messages: pageSize, expires: 2_000 })) {
        if (message.seq <= lastSeq) page.push(message);
        if (message.seq >= lastSeq) {
          done = true;
          break;
        }
      }
      if (page.length > 0) yield page;
      if (done) return;
      // A reader that stopped short would take a partial stream for the whole (a register journal's replay, say).
      if (page.length === 0) throw new Error(`reading stream ${stream}${subject === undefined ? '' : ` (${subject})`} stopped before its last message ${lastSeq}: nothing arrived within 2 s; try again`);
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}

/** The sequence of the stream's (or the subject's) last message; 0 when there is none. */
async function lastSequence(nc: NatsConnection, stream: string, subject: string | undefined): Promise<number> {
  const jsm = await managerForReads(nc);
  if (subject === undefined) {
    const { state } = await jsm.streams.info(stream);
    return state.messages === 0 ? 0 : state.last_seq;
  }
  const last = await jsm.streams.getMessage(stream, { last_by_subj: subject });
  return last?.seq ?? 0;
}

/** Every message of a stream as it is now, in order (for tests, tools and small streams). */
export async function readStream(nc: NatsConnection, stream: string): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for await (const page of readStreamPages(nc, stream, { pageSize: 1000 })) {
    for (const message of page) {
      const headers: Record<string, string> = {};
      for (const [key, values] of message.headers ?? []) headers[key] = values[0] ?? '';
      out.push({ seq: message.seq, subject: message.subject, headers, data: message.data });
    }
  }
  return out;
}
