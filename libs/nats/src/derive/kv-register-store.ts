import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { BloomFilter, keyId, type RegisterStore, type StoredRegister } from '@segment/runtime';
import { encodeKey, encodeKeyToken } from '../kv-keys.ts';
import type { PipelinedPublisher } from '../publisher.ts';

/** Reads this many registers at a time: direct gets are request/reply, so overlap them. */
const loadConcurrency = 256;
/** Registers larger than this are written with an ack each; the fence below never has to vouch for a size rejection. */
const unackedMaxBytes = 64 * 1024;
/** A key of the bucket no register has (registers' keys start with a partition token). */
const fenceKey = '_fence';

/**
 * Registers of one derivation in a KV bucket, stored as `{seq, value}`. Writes go through the
 * pipelined publisher straight to the bucket's subjects (a KV put is a JetStream publish), so a
 * commit's writes are in flight together instead of one round trip each (~11K/s measured).
 *
 * Most keys a partition meets are new, and a get of a missing key costs a round trip and an error
 * object (it capped derivations at ~12K events/s). So the first load of a partition lists the keys
 * it has (headers only, streamed) into a Bloom filter, and later loads fetch only keys that may
 * exist: fixed memory whatever the keyspace (a Set of the keys grew with it). Keys group into
 * partitions by their first component (the vendor), whose only writer is this process.
 *
 * A commit writes registers without asking for an ack each, then one acked write to the same
 * bucket (the fence): the server stores one connection's messages to one stream in order, so the
 * fence's ack says every register before it was stored. That saved ~16% of the derivation's CPU
 * and ~17% of nats-server's. Messages in flight when a connection drops are lost while the fence,
 * sent after the reconnect, would still be acked; so a commit during which the connection dropped
 * writes its registers again, acked one by one.
 */
export class KvRegisterStore<R = unknown> implements RegisterStore<R> {
  readonly #kv: KV;
  readonly #bucket: string;
  readonly #publisher: PipelinedPublisher;
  /** Per partition (first key component, encoded): the keys stored in the bucket, and maybe a few more. */
  readonly #known = new Map<string, BloomFilter>();
  readonly #nc: NatsConnection;
  /** Counts connection interruptions: a commit that saw one cannot trust its fence. */
  #interruptions = 0;

  constructor(nc: NatsConnection, kv: KV, bucket: string, publisher: PipelinedPublisher) {
    this.#nc = nc;
    this.#kv = kv;
    this.#bucket = bucket;
    this.#publisher = publisher;
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect' || status.type === 'reconnect' || status.type === 'staleConnection' || status.type === 'forceReconnect') this.#interruptions++;
      }
    })();
  }

  async load(keys: readonly (readonly (string | number)[])[]): Promise<Map<string, StoredRegister<R>>> {
    const out = new Map<string, StoredRegister<R>>();
    const stored: (readonly (string | number)[])[] = [];
    for (const key of keys) {
      const known = await this.#knownKeys(encodeKeyToken(key[0]!));
      if (known.has(encodeKey(key))) stored.push(key);
    }
    for (let i = 0; i < stored.length; i += loadConcurrency) {
      await Promise.all(
        stored.slice(i, i + loadConcurrency).map(async (key) => {
          const entry = await this.#kv.get(encodeKey(key));
          if (entry && entry.operation === 'PUT' && entry.length > 0) out.set(keyId(key), entry.json<StoredRegister<R>>());
        }),
      );
    }
    return out;
  }

  async save(entries: readonly { key: readonly (string | number)[]; register: StoredRegister<R> }[]): Promise<void> {
    const interruptions = this.#interruptions;
    const acked: Promise<unknown>[] = [];
    const written: { partition: string; subject: string; body: string }[] = [];
    for (const { key, register } of entries) {
      const encoded = encodeKey(key);
      const write = { partition: encodeKeyToken(key[0]!), subject: `$KV.${this.#bucket}.${encoded}`, body: JSON.stringify(register) };
      if (write.body.length > unackedMaxBytes) acked.push(this.#publisher.publish(write.subject, write.body));
      else this.#nc.publish(write.subject, write.body);
      written.push(write);
    }
    acked.push(this.#publisher.publish(`$KV.${this.#bucket}.${fenceKey}`, ''));
    await Promise.all(acked);
    if (this.#interruptions !== interruptions) {
      await Promise.all(written.map(({ subject, body }) => this.#publisher.publish(subject, body)));
    }
    for (const { partition, subject } of written) (await this.#knownKeys(partition)).add(subject.slice(this.#bucket.length + 5));
  }

  async #knownKeys(partition: string): Promise<BloomFilter> {
    let known = this.#known.get(partition);
    if (!known) {
      known = new BloomFilter();
      for await (const key of await this.#kv.keys(`${partition}.>`)) known.add(key);
      this.#known.set(partition, known);
    }
    return known;
  }
}
