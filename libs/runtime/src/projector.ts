import type { SchemaName } from '@segment/model';
import { backOff } from './backoff.ts';
import type { Logger } from '@segment/telemetry';
import { Combiner } from './combiner.ts';
import { FencedError, type ProjectionPosition, type ProjectionStore, type Provenance, type SourceMessage } from './ports.ts';
import type { MessageSource } from './partition-feed.ts';

/** A derived message: its provenance and the documents it carries. */
export interface DerivedMessage {
  readonly provenance: Provenance;
  readonly documents: readonly unknown[];
}

export interface ProjectorOptions {
  name: string;
  schema: SchemaName;
  key: readonly string[];
  store: ProjectionStore;
  /** Reads a derived message's provenance and documents. */
  decode(message: SourceMessage): DerivedMessage;
  /** Opens the derived stream to deliver from `startSeq`. */
  open(startSeq: number): Promise<MessageSource>;
  logger: Logger;
  /** Derived messages per transaction, at most (each carries up to a few thousand documents). */
  maxMessages?: number;
  idleFetchMs?: number;
  /**
   * While no derived message arrives, how often the projector confirms it still holds the
   * projection (an empty commit): a replaced projector learns it at its next commit, and an idle
   * one would otherwise never commit. Its replacement re-creates the durable consumer, so the
   * replaced one is idle from then on. Default 1 s: one small transaction a second while idle.
   */
  leaseCheckMs?: number;
}

export interface ProjectorStats {
  messages: number;
  skipped: number;
  documents: number;
  rows: number;
  transactions: number;
  streamSeq: number;
}

/**
 * Materializes a derived collection: per transaction, combine the fetched messages' documents by
 * key, then load-reduce-store them with the position in one store transaction, then ack.
 * A derived message is a whole derivation transaction (the derivation splits a transaction rather
 * than its output). One whose source range ends at or below its partition's checkpoint is a replay
 * (re-published after a crash, possibly beyond the duplicate window): everything in it is already
 * reflected, because a restarted derivation resumes at its own checkpoint, so the ranges it
 * publishes never leave a gap. Ranges that overlap the checkpoint are applied whole; the
 * collections' reductions are idempotent, so re-reducing a document already reflected changes nothing.
 */
export class Projector {
  readonly #options: ProjectorOptions;
  readonly #combiner: Combiner;
  #running = false;
  #done: Promise<void> | undefined;
  #fenced: FencedError | undefined;
  readonly stats: ProjectorStats = { messages: 0, skipped: 0, documents: 0, rows: 0, transactions: 0, streamSeq: 0 };

  constructor(options: ProjectorOptions) {
    this.#options = options;
    this.#combiner = new Combiner(options.schema, options.key);
  }

  get name(): string {
    return this.#options.name;
  }

  /** Takes the projection over and starts its loop. */
  async start(): Promise<void> {
    const position = await this.#options.store.acquire();
    this.#running = true;
    this.#done = this.#run(position);
  }

  /** Set when another projector took over: this one stopped without committing. */
  get fenced(): FencedError | undefined {
    return this.#fenced;
  }

  /** Resolves when the loop ends (after `stop()`, or when fenced). */
  get done(): Promise<void> {
    return this.#done ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }

  async #run(initial: ProjectionPosition): Promise<void> {
    const { logger } = this.#options;
    let position = initial;
    let source: MessageSource | undefined;
    let failures = 0;
    const leaseCheckMs = this.#options.leaseCheckMs ?? 1_000;
    let confirmedAt = Date.now();
    logger.info({ projector: this.#options.name, streamSeq: position.streamSeq }, 'projector started');
    while (this.#running) {
      let fenced: FencedError | undefined;
      try {
        source ??= await this.#options.open(position.streamSeq + 1);
        const messages = await source.fetch(this.#options.maxMessages ?? 32, this.#options.idleFetchMs ?? 250);
        if (messages.length === 0) {
          if (Date.now() - confirmedAt >= leaseCheckMs) {
            await this.#options.store.commit([], position);
            confirmedAt = Date.now();
          }
          continue;
        }
        position = await this.#commit(messages, position);
        confirmedAt = Date.now();
        await source.ack(position.streamSeq);
        failures = 0;
      } catch (error) {
        this.#combiner.drain();
        if (error instanceof FencedError) fenced = error;
        else {
          failures += 1;
          logger.warn({ err: error, projector: this.#options.name, failures }, 'projection transaction failed; reopening');
          await source?.close().catch(() => undefined);
          source = undefined;
          // Re-read the position: a failed commit may or may not have landed. The store does not
          // hand the projection back to a holder that was replaced meanwhile: it fences it.
          try {
            position = await this.#options.store.acquire();
          } catch (reread) {
            if (reread instanceof FencedError) fenced = reread;
          }
        }
        if (!fenced && this.#running) await backOff(failures);
      }
      if (fenced) {
        this.#fenced = fenced;
        logger.error({ projector: this.#options.name }, 'fenced: another projector took over; stopping without committing');
        break;
      }
    }
    await source?.close().catch(() => undefined);
    logger.info({ projector: this.#options.name, ...this.stats }, 'projector stopped');
  }

  async #commit(messages: readonly SourceMessage[], position: ProjectionPosition): Promise<ProjectionPosition> {
    const checkpoints = new Map(position.checkpoints);
    let documents = 0;
    for (const message of messages) {
      const { provenance, documents: carried } = this.#options.decode(message);
      this.stats.messages += 1;
      if (provenance.lastSeq <= (checkpoints.get(provenance.partition) ?? 0)) {
        this.stats.skipped += 1;
        continue;
      }
      for (const document of carried) this.#combiner.add(document);
      documents += carried.length;
      checkpoints.set(provenance.partition, provenance.lastSeq);
    }
    const combined = this.#combiner.drain();
    const next = { streamSeq: messages.at(-1)!.seq, checkpoints };
    await this.#options.store.commit(combined, next);
    this.stats.documents += documents;
    this.stats.rows += combined.length;
    this.stats.transactions += 1;
    this.stats.streamSeq = next.streamSeq;
    return next;
  }
}
