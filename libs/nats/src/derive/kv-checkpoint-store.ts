import type { KV } from '@nats-io/kv';
import type { CheckpointStore } from '@segment/runtime';

/** Checkpoints of one consumer group (e.g. `derive`), one KV key per partition: `derive.7` → `{"seq":123}`. */
export class KvCheckpointStore implements CheckpointStore {
  readonly #kv: KV;
  readonly #group: string;

  constructor(kv: KV, group: string) {
    this.#kv = kv;
    this.#group = group;
  }

  async load(partition: number): Promise<number> {
    const entry = await this.#kv.get(`${this.#group}.${partition}`);
    return entry && entry.operation === 'PUT' && entry.length > 0 ? entry.json<{ seq: number }>().seq : 0;
  }

  async save(partition: number, seq: number): Promise<void> {
    await this.#kv.put(`${this.#group}.${partition}`, JSON.stringify({ seq }));
  }
}
