// Events published in the background while a fault suite kills processes (or the server): paced
// rounds of what was released, each round retried until every event is stored.
import { setTimeout as sleep } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Event } from '@segment/model';
import { PipelinedPublisher, type Names, type PublishItem } from '@segment/nats';

export interface PacedPublisherOptions {
  /** Events per round. */
  chunk: number;
  /** The pause after each round. */
  pauseMs: number;
  /** Short where the server is killed: the acks of publishes in flight when it dies never come. */
  ackTimeoutMs: number;
  /** Tries of one round before the suite fails. */
  maxAttempts: number;
}

/**
 * Publishes the events released to it in paced rounds, in the background, retrying whatever failed
 * (a server restart fails the publishes in flight). Nats-Msg-Id = event id, so a retry of an event
 * that was in fact stored is dropped as a duplicate. A retried event may land after later ones, so
 * a reference model must be fed the events in the order the stream stored them.
 */
export class PacedPublisher {
  rounds = 0;
  retriedRounds = 0;
  readonly #names: Names;
  readonly #options: PacedPublisherOptions;
  readonly #queue: Event[] = [];
  #busy = false;
  #finishing = false;
  #wake: (() => void) | undefined;
  readonly #done: Promise<void>;
  readonly #burstPublisher: PipelinedPublisher;
  readonly #bursts: Promise<void>[] = [];
  #burstsInFlight = 0;

  constructor(nc: NatsConnection, names: Names, options: PacedPublisherOptions) {
    this.#names = names;
    this.#options = options;
    this.#burstPublisher = new PipelinedPublisher(nc, { ackTimeoutMs: options.ackTimeoutMs });
    this.#done = this.#run(nc);
    this.#done.catch(() => undefined);
  }

  release(events: readonly Event[]): void {
    this.#queue.push(...events);
    this.#wake?.();
  }

  /** Publishes the events at once, beside the paced rounds: the derive worker gets busy for a while. */
  burst(events: readonly Event[]): void {
    this.#burstsInFlight++;
    const done = this.#publishAll(this.#burstPublisher, this.#items(events)).finally(() => this.#burstsInFlight--);
    this.#bursts.push(done);
    done.catch(() => undefined);
  }

  /** Whether something released is still being published. */
  get publishing(): boolean {
    return this.#busy || this.#queue.length > 0 || this.#burstsInFlight > 0;
  }

  /** Resolves once everything released is stored. */
  async finish(): Promise<void> {
    this.#finishing = true;
    this.#wake?.();
    await this.#done;
    await Promise.all(this.#bursts);
    await this.#burstPublisher.close();
  }

  #items(events: readonly Event[]): PublishItem[] {
    return events.map((event) => ({ subject: this.#names.events.subject(event.segment.vendor), payload: JSON.stringify(event), msgId: event.event }));
  }

  async #publishAll(publisher: PipelinedPublisher, items: PublishItem[]): Promise<void> {
    let pending = items;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) this.retriedRounds++;
      if (attempt > this.#options.maxAttempts) throw new Error(`a publish round still fails after ${attempt - 1} attempts`);
      const failed: PublishItem[] = [];
      await publisher.publishMany(pending, (item, _ack, error) => {
        if (error) failed.push(item);
      });
      this.rounds++;
      pending = failed;
      if (pending.length > 0) await sleep(250);
    }
  }

  async #run(nc: NatsConnection): Promise<void> {
    const publisher = new PipelinedPublisher(nc, { ackTimeoutMs: this.#options.ackTimeoutMs });
    for (;;) {
      if (this.#queue.length === 0) {
        if (this.#finishing) break;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      this.#busy = true;
      await this.#publishAll(publisher, this.#items(this.#queue.splice(0, this.#options.chunk)));
      this.#busy = false;
      await sleep(this.#options.pauseMs);
    }
    await publisher.close();
  }
}
