import type { KV } from '@nats-io/kv';
import { keyId, type RegisterStore, type StoredRegister } from '@segment/runtime';
import { encodeKey } from '../kv-keys.ts';
import type { PipelinedPublisher } from '../publisher.ts';

/** Reads this many registers at a time: direct gets are request/reply, so overlap them. */
const loadConcurrency = 256;

/**
 * Registers of one derivation in a KV bucket, stored as `{seq, value}`. Writes go through the
 * pipelined publisher straight to the bucket's subjects (a KV put is a JetStream publish), so a
 * commit's writes are in flight together instead of one round trip each (~11K/s measured).
 */
export class KvRegisterStore<R = unknown> implements RegisterStore<R> {
  readonly #kv: KV;
  readonly #bucket: string;
  readonly #publisher: PipelinedPublisher;

  constructor(kv: KV, bucket: string, publisher: PipelinedPublisher) {
    this.#kv = kv;
    this.#bucket = bucket;
    this.#publisher = publisher;
  }

  async load(keys: readonly (readonly (string | number)[])[]): Promise<Map<string, StoredRegister<R>>> {
    const out = new Map<string, StoredRegister<R>>();
    for (let i = 0; i < keys.length; i += loadConcurrency) {
      await Promise.all(
        keys.slice(i, i + loadConcurrency).map(async (key) => {
          const entry = await this.#kv.get(encodeKey(key));
          if (entry && entry.operation === 'PUT' && entry.length > 0) out.set(keyId(key), entry.json<StoredRegister<R>>());
        }),
      );
    }
    return out;
  }

  async save(entries: readonly { key: readonly (string | number)[]; register: StoredRegister<R> }[]): Promise<void> {
    await Promise.all(entries.map(({ key, register }) => this.#publisher.publish(`$KV.${this.#bucket}.${encodeKey(key)}`, JSON.stringify(register))));
  }
}
