import { collections, validators, type Event, type SchemaName } from '@segment/model';
import { applyEvent, shuffleKeyValues, type Derivation } from '@segment/segment';
import type { Logger } from '@segment/telemetry';
import { Combiner } from './combiner.ts';
import { RegisterCache, WrittenRegisters, keyId } from './register-cache.ts';
import { OutputTooLargeError, type CheckpointStore, type DeadLetter, type DeadLetterSink, type Output, type OutputSink, type RegisterStore, type SourceMessage, type StoredRegister } from './ports.ts';

export interface CommitPolicy {
  /** Commit (write registers back, store the checkpoint, ack) at least this often... */
  maxDelayMs: number;
  /** ...or once this many registers are waiting to be written. */
  maxDirtyRegisters: number;
}

export interface PartitionProcessorOptions {
  partition: number;
  derivations: readonly Derivation[];
  /** One store per stateful derivation, by derivation name. */
  registerStores: ReadonlyMap<string, RegisterStore>;
  checkpoints: CheckpointStore;
  output: OutputSink;
  deadLetters: DeadLetterSink;
  logger: Logger;
  commit?: Partial<CommitPolicy>;
  /**
   * By derivation name, the written-back registers kept in memory, shared with the worker's other
   * partitions (beyond them, the registers changed since the last commit). By default this
   * processor's own, of 100,000 registers.
   */
  writtenRegisters?: ReadonlyMap<string, WrittenRegisters>;
  /** A message whose lambda keeps throwing is dead-lettered after this many tries. */
  maxLambdaTries?: number;
  /**
   * A transaction or commit that takes at least this long, and more than 1 ms per message it
   * covers, is logged (warn) with where its time went; default 1,000 ms. Under full load a
   * transaction of 4,000 messages takes a second by design (its partitions share the process):
   * a second alone reported 96 transactions in a 1M-event bench, and ~1,000 commits in a 10M one.
   * The bench's latency split had shown seconds spent in the derivation without saying where.
   */
  slowMs?: number;
}

/** A lambda threw on one event: retried with the whole transaction, dead-lettered after too many tries. */
export class LambdaError extends Error {
  readonly code = 'SEGMENT_LAMBDA_FAILED';
  readonly seq: number;
  constructor(derivation: string, seq: number, cause: unknown) {
    super(`derivation ${derivation} failed on source sequence ${seq}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'LambdaError';
    this.seq = seq;
  }
}

interface Stateful {
  derivation: Derivation;
  cache: RegisterCache<unknown>;
}

const decoder = new TextDecoder();

interface RegisterKey {
  values: (string | number)[];
  id: string;
}

/** An event as validated, with its register key of each stateful derivation (in their order). */
interface ParsedEvent {
  event: Event;
  registerKeys: RegisterKey[];
}

function registerKeyOf(derivation: Derivation, event: Event): RegisterKey {
  const values = shuffleKeyValues(derivation, event);
  return { values, id: keyId(values) };
}

/** An event already validated: its bytes parse to the same document (validation changes nothing). */
function parseValidated(message: SourceMessage): Event {
  return JSON.parse(decoder.decode(message.data)) as Event;
}

/**
 * Runs the transactions of one source partition (one vendor's events): apply events in stream
 * order to every derivation, combine outputs by key, publish them with provenance, and from time to
 * time commit — registers first, then the checkpoint — after which the caller acks.
 *
 * Exactly-once effects come from sequences, not acks: an event at or below the checkpoint was fully
 * processed; a register records the last sequence it reflects, and is only ever written after the
 * outputs of that sequence were published, so a replayed event whose register already reflects it
 * is skipped, and any other replay recomputes identical outputs that the idempotent reductions of
 * the derived collections absorb.
 */
export class PartitionProcessor {
  readonly partition: number;
  readonly #options: PartitionProcessorOptions;
  readonly #policy: CommitPolicy;
  readonly #stateful: Stateful[];
  readonly #statefulIndex: Map<Derivation, number>;
  readonly #combiners: Map<Derivation, Combiner>;
  readonly #tries = new Map<number, number>();
  #committed = 0;
  #processedThrough = 0;
  /** Messages processed since the last commit. */
  #uncommitted = 0;
  #lastCommitAt = Date.now();

  constructor(options: PartitionProcessorOptions) {
    this.partition = options.partition;
    this.#options = options;
    this.#policy = { maxDelayMs: 1000, maxDirtyRegisters: 50_000, ...options.commit };
    this.#stateful = options.derivations
      .filter((derivation) => derivation.register)
      .map((derivation) => {
        const store = options.registerStores.get(derivation.name);
        if (!store) throw new Error(`no register store for derivation ${derivation.name}`);
        const written = options.writtenRegisters?.get(derivation.name) ?? new WrittenRegisters(100_000);
        return { derivation, cache: new RegisterCache(store, written, derivation.register!.persist) };
      });
    this.#statefulIndex = new Map(this.#stateful.map((s, i) => [s.derivation, i]));
    this.#combiners = new Map(options.derivations.map((d) => [d, new Combiner(d.outputSchema as SchemaName, collections[d.collection].key)]));
  }

  /** Loads the checkpoint: everything at or below it is done. */
  async start(): Promise<void> {
    this.#committed = this.#processedThrough = await this.#options.checkpoints.load(this.partition);
  }

  get committed(): number {
    return this.#committed;
  }

  get processedThrough(): number {
    return this.#processedThrough;
  }

  /** Whether a commit is due by the policy; the caller may also commit whenever it likes (e.g. when idle). */
  get commitDue(): boolean {
    if (this.#processedThrough === this.#committed) return false;
    const dirty = this.#stateful.reduce((sum, s) => sum + s.cache.dirtyCount, 0);
    return dirty >= this.#policy.maxDirtyRegisters || Date.now() - this.#lastCommitAt >= this.#policy.maxDelayMs;
  }

  /**
   * Processes one fetched batch as a transaction. Messages at or below what this processor already
   * handled, in earlier batches or earlier in this one, are skipped. Throws (leaving no trace) when a
   * lambda fails; call again to retry.
   */
  async process(batch: readonly SourceMessage[]): Promise<void> {
    // Strictly increasing: a message at or below one already taken — a redelivery after an ack
    // timeout, inside the same batch — was handled; applying it again would put an older event after
    // a newer one (and move processedThrough back).
    let through = this.#processedThrough;
    const fresh = batch.filter((message) => message.seq > through && ((through = message.seq), true));
    if (fresh.length === 0) return;
    const startedAt = performance.now();
    const deadLetters: DeadLetter[] = [];
    // The valid events are kept as their messages, and as parsed only until they are applied, and
    // only while no register has to be read: parsed events kept across the waits for registers and
    // publishes were promoted to the old generation (1M bench: the worker's peak RSS 629-646 ->
    // 552-589 MB, at 5M 915 -> 780 MB, for as much CPU); then they are parsed again when applied.
    const events: SourceMessage[] = [];
    let parsed: ParsedEvent[] | undefined = [];
    /** Per stateful derivation, the register keys of the transaction's events by id. */
    const keysToRead = this.#stateful.map(() => new Map<string, (string | number)[]>());
    for (const message of fresh) {
      const decoded = this.#decode(message);
      if ('reason' in decoded) deadLetters.push({ message, reason: decoded.reason });
      else {
        const registerKeys = this.#stateful.map((s, i) => {
          const key = registerKeyOf(s.derivation, decoded.event);
          keysToRead[i]!.set(key.id, key.values);
          return key;
        });
        events.push(message);
        parsed.push({ event: decoded.event, registerKeys });
      }
    }
    const reads = this.#stateful.map((s, i) => s.cache.prefetch(keysToRead[i]!)).filter((read) => read !== undefined);
    if (reads.length > 0) {
      parsed = undefined;
      await Promise.all(reads);
    }
    const prefetchedAt = performance.now();

    for (;;) {
      try {
        const staged = this.#apply(events, parsed);
        // Not kept across the publish's wait.
        parsed = undefined;
        const appliedAt = performance.now();
        await this.#publish(fresh[0]!.seq, fresh.at(-1)!.seq, deadLetters);
        for (const { derivation, cache } of this.#stateful) {
          for (const [id, { key, register }] of staged.get(derivation)!) cache.set(id, key, register);
        }
        this.#processedThrough = fresh.at(-1)!.seq;
        this.#uncommitted += fresh.length;
        for (const { seq } of events) this.#tries.delete(seq);
        this.#reportIfSlow('slow transaction', startedAt, fresh.length, {
          messages: fresh.length,
          firstSeq: fresh[0]!.seq,
          readRegistersMs: prefetchedAt - startedAt,
          applyMs: appliedAt - prefetchedAt,
          publishMs: performance.now() - appliedAt,
        });
        return;
      } catch (error) {
        // A retry parses again: its events may have lost one to the dead letters.
        parsed = undefined;
        for (const combiner of this.#combiners.values()) combiner.drain();
        if (error instanceof OutputTooLargeError && fresh.length > 1) {
          // Nothing was published: run the batch as two smaller transactions instead.
          const half = Math.ceil(fresh.length / 2);
          await this.process(fresh.slice(0, half));
          await this.process(fresh.slice(half));
          return;
        }
        if (error instanceof OutputTooLargeError) {
          this.#options.logger.error({ err: error, seq: fresh[0]!.seq, partition: this.partition }, 'dead-lettering an event whose outputs exceed the message size');
          deadLetters.push({ message: fresh[0]!, reason: `its derived documents exceed the maximum message size: ${error.message}` });
          events.length = 0;
          continue;
        }
        if (!(error instanceof LambdaError)) throw error;
        const tries = (this.#tries.get(error.seq) ?? 0) + 1;
        this.#tries.set(error.seq, tries);
        if (tries < (this.#options.maxLambdaTries ?? 3)) throw error;
        this.#options.logger.error({ err: error, seq: error.seq, partition: this.partition }, 'dead-lettering an event its lambda keeps failing on');
        const message = fresh.find((m) => m.seq === error.seq)!;
        deadLetters.push({ message, reason: error.message });
        events.splice(events.findIndex((e) => e.seq === error.seq), 1);
      }
    }
  }

  /** Writes registers back, then the checkpoint. Returns the sequence the caller may now ack. */
  async commit(): Promise<number> {
    const through = this.#processedThrough;
    if (through === this.#committed) return through;
    const startedAt = performance.now();
    await Promise.all(this.#stateful.map((s) => s.cache.flush()));
    const flushedAt = performance.now();
    await this.#options.checkpoints.save(this.partition, through);
    this.#committed = through;
    this.#lastCommitAt = Date.now();
    const messages = this.#uncommitted;
    this.#uncommitted = 0;
    this.#reportIfSlow('slow commit', startedAt, messages, { messages, through, writeRegistersMs: flushedAt - startedAt, checkpointMs: performance.now() - flushedAt });
    return through;
  }

  #reportIfSlow(message: string, startedAt: number, messages: number, parts: Record<string, number>): void {
    const totalMs = performance.now() - startedAt;
    if (totalMs < Math.max(this.#options.slowMs ?? 1_000, messages)) return;
    const rounded = Object.fromEntries(Object.entries(parts).map(([name, value]) => [name, Math.round(value)]));
    this.#options.logger.warn({ partition: this.partition, totalMs: Math.round(totalMs), ...rounded }, message);
  }

  #decode(message: SourceMessage): { event: Event } | { reason: string } {
    let document: unknown;
    try {
      document = JSON.parse(decoder.decode(message.data));
    } catch (error) {
      return { reason: `not JSON: ${error instanceof Error ? error.message : String(error)}` };
    }
    const checked = validators.event.check(document);
    if (!checked.ok) return { reason: checked.errors.map((e) => `${e.path}: ${e.message}`).join('; ') };
    if (checked.document.segment.vendor !== this.partition) {
      return { reason: `/segment/vendor: is ${checked.document.segment.vendor}, but the event was published to vendor ${this.partition}'s subject ${message.subject}` };
    }
    return { event: checked.document };
  }

  /**
   * Runs the lambdas over the batch into the combiners; register changes are staged, not yet
   * cached. `parsed`, when given, holds the events of `events` as parsed already, with their keys.
   */
  #apply(events: readonly SourceMessage[], parsed: readonly ParsedEvent[] | undefined) {
    const staged = new Map<Derivation, Map<string, { key: (string | number)[]; register: StoredRegister }>>(
      this.#stateful.map((s) => [s.derivation, new Map()]),
    );
    for (let i = 0; i < events.length; i++) {
      const message = events[i]!;
      const { seq } = message;
      const event = parsed?.[i]!.event ?? parseValidated(message);
      for (const derivation of this.#options.derivations) {
        try {
          const combiner = this.#combiners.get(derivation)!;
          if (!derivation.register) {
            for (const output of applyEvent(derivation, event, undefined).outputs) combiner.add(output);
            continue;
          }
          const index = this.#statefulIndex.get(derivation)!;
          const { values: key, id } = parsed?.[i]!.registerKeys[index] ?? registerKeyOf(derivation, event);
          const changes = staged.get(derivation)!;
          const current = changes.get(id)?.register ?? this.#stateful[index]!.cache.get(id);
          // Already reflected: this event's outputs were published before its register was written.
          if (current && current.seq >= seq) continue;
          const { after, outputs } = applyEvent(derivation, event, current ? current.value : derivation.register.initial);
          changes.set(id, { key, register: { value: after, seq } });
          for (const output of outputs) combiner.add(output);
        } catch (error) {
          throw new LambdaError(derivation.name, seq, error);
        }
      }
    }
    return staged;
  }

  /** Not async, like the sinks' `publish`: no suspended frame keeps the documents while the publishes wait. */
  #publish(firstSeq: number, lastSeq: number, deadLetters: readonly DeadLetter[]): Promise<unknown> {
    const outputs: Output[] = [];
    for (const [derivation, combiner] of this.#combiners) {
      if (combiner.size === 0) continue;
      const documents = combiner.drain();
      const validator = validators[derivation.outputSchema as SchemaName];
      for (const document of documents) validator.assert(document);
      outputs.push({ collection: derivation.collection, documents });
    }
    return Promise.all([
      outputs.length > 0 ? this.#options.output.publish(outputs, { partition: this.partition, firstSeq, lastSeq }) : undefined,
      deadLetters.length > 0 ? this.#options.deadLetters.deadLetter(deadLetters) : undefined,
    ]);
  }
}
