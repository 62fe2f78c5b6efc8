// The runtime's ports: what a partition's transactions need from the outside world. NATS adapters
// implement them in @segment/nats; memory twins (memory-ports.ts) serve unit tests.

/** One message of a source partition (one vendor's events), as fetched. */
export interface SourceMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
}

/** A register with the source sequence of the last event it reflects. */
export interface StoredRegister<R = unknown> {
  readonly value: R;
  readonly seq: number;
}

/** The durable home of one derivation's registers (a KV bucket). Keys are shuffle keys' values. */
export interface RegisterStore<R = unknown> {
  /** Reads many registers at once, keyed by `keyId(key)`; a key never written is absent from the result. */
  load(keys: readonly (readonly (string | number)[])[]): Promise<Map<string, StoredRegister<R>>>;
  /** Writes many registers, pipelined; resolves when every write is durable. */
  save(entries: readonly { key: readonly (string | number)[]; register: StoredRegister<R> }[]): Promise<void>;
}

/** Where a partition's progress is committed: the highest source sequence fully reflected in registers. */
export interface CheckpointStore {
  load(partition: number): Promise<number>;
  save(partition: number, seq: number): Promise<void>;
}

/** Provenance of derived documents: which source partition and inclusive sequence range they reflect. */
export interface Provenance {
  readonly partition: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** Receives one transaction's combined documents of one collection; resolves once they are durable. */
export interface OutputSink {
  publish(collection: string, provenance: Provenance, documents: readonly unknown[]): Promise<void>;
}

export interface DeadLetter {
  readonly message: SourceMessage;
  /** Why, naming the field where there is one: `/segment/vendor: must be >= 1`. */
  readonly reason: string;
}

export interface DeadLetterSink {
  deadLetter(letters: readonly DeadLetter[]): Promise<void>;
}
