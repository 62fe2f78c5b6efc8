// The runtime's ports: what a partition's transactions need from the outside world. NATS adapters
// implement them in @segment/nats; memory twins (memory-ports.ts) serve unit tests.

/** One message of a source partition (one vendor's events), as fetched. */
export interface SourceMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  /** Present when the message has headers (derived messages carry their provenance there). */
  readonly headers?: { get(name: string): string };
}

/** A register with the source sequence of the last event it reflects. */
export interface StoredRegister<R = unknown> {
  readonly value: R;
  readonly seq: number;
}

/**
 * The durable home of one derivation's registers (a KV bucket). Keys are shuffle keys' values.
 * Registers cross it as their JSON text (a `StoredRegister`): that is what the store keeps, and the
 * register cache keeps the same string, so a register is stringified once and held once.
 */
export interface RegisterStore {
  /**
   * Reads many registers at once, keyed by `keyId(key)`; a key never written is absent from the
   * result. A Map, not a promise, when every register was read from memory.
   */
  load(keys: readonly (readonly (string | number)[])[]): Map<string, string> | Promise<Map<string, string>>;
  /** Writes many registers, pipelined; resolves when every write is durable. */
  save(entries: readonly { key: readonly (string | number)[]; json: string }[]): Promise<void>;
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

/** One transaction's combined documents of one collection. */
export interface Output {
  readonly collection: string;
  readonly documents: readonly unknown[];
}

/**
 * Receives a transaction's outputs; resolves once they are durable. Each collection's output must
 * arrive whole, as one message: a reader can then tell a transaction it holds from one it does not
 * by its provenance alone. Outputs that cannot fit are refused before anything is published.
 */
export interface OutputSink {
  publish(outputs: readonly Output[], provenance: Provenance): Promise<void>;
}

/** A transaction's output for a collection is larger than one message may be: split the transaction. */
export class OutputTooLargeError extends Error {
  readonly code = 'SEGMENT_OUTPUT_TOO_LARGE';
}

export interface DeadLetter {
  readonly message: SourceMessage;
  /** Why, naming the field where there is one: `/segment/vendor: must be >= 1`. */
  readonly reason: string;
}

export interface DeadLetterSink {
  deadLetter(letters: readonly DeadLetter[]): Promise<void>;
}

/** Where a projection stands: its read position in the derived stream, and per source partition the last sequence reflected. */
export interface ProjectionPosition {
  readonly streamSeq: number;
  readonly checkpoints: ReadonlyMap<number, number>;
}

/** A materialized view of a derived collection (a Postgres table), updated transactionally. */
export interface ProjectionStore<D = unknown> {
  /**
   * The first call takes the projection over, fencing any previous holder; later calls only re-read
   * where it stands, and fail with a `FencedError` once another holder took it.
   */
  acquire(): Promise<ProjectionPosition>;
  /**
   * In one transaction: reduce `documents` (combined, one per key) into the stored ones, store the
   * results and the new position. Rejects with a `FencedError` when another holder took over.
   */
  commit(documents: readonly D[], position: ProjectionPosition): Promise<void>;
}

/** Another projector took the projection over: this one must stop without committing. */
export class FencedError extends Error {
  readonly code = 'SEGMENT_PROJECTOR_FENCED';
}
