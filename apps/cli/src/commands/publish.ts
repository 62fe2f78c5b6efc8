// `segment publish`: NDJSON events from stdin, validated, into the events stream through the
// pipelined publisher (Nats-Msg-Id = event id, so a re-run inside the duplicate window stores nothing twice).
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '@segment/config';
import { formatFieldError, validators } from '@segment/model';
import { connectNats, namesFor, PipelinedPublisher, type Names, type PublishItem } from '@segment/nats';
import { numberFlag, parseCommandArgs, shutdownSignal, type Command } from '../command.ts';

const usage = `usage: segment publish [--nats URL] [--namespace NAME] [--rate R] [--strict]

Reads events from stdin, one JSON document a line (NDJSON), checks each against the event schema
and publishes the valid ones to the events stream: subject <namespace>.events.<vendor>, with the
event id as Nats-Msg-Id, so publishing the same file again inside the duplicate window stores
nothing twice. Invalid lines are reported on stderr with their line number and skipped; blank
lines are ignored. Ends with a summary on stderr; a progress line too when stderr is a terminal.

  segment generate --count 100000 | segment publish

options:
  --nats URL         NATS server(s), comma-separated (default $SEGMENT_NATS_URL or nats://127.0.0.1:4222)
  --namespace NAME   streams namespace (default $SEGMENT_NAMESPACE or segment)
  --rate R           publish at most R events per second (default 0: as fast as the stream acks)
  --strict           stop at the first invalid line

The events stream must exist: run \`segment setup\` first.

exit codes: 0 every line published, 1 a line was rejected or a publish failed, 2 usage error,
            130 interrupted (SIGINT or SIGTERM; what was sent before is still acknowledged)`;

interface EventItem extends PublishItem {
  readonly line: number;
}

interface Tally {
  published: number;
  duplicates: number;
  rejected: number;
  failed: number;
}

// With --rate, sleep at least 10 ms at a time and then send what has fallen due since.
const rateSliceMs = 10;
const progressIntervalMs = 500;
const newline = 0x0a;

export const command: Command = {
  async run(args) {
    const { values } = parseCommandArgs(
      args,
      { nats: { type: 'string' }, namespace: { type: 'string' }, rate: { type: 'string' }, strict: { type: 'boolean', default: false } },
      usage,
    );
    let natsUrl: string;
    let names: Names;
    let rate: number;
    try {
      const config = loadConfig(process.env, { natsUrl: values.nats, namespace: values.namespace });
      natsUrl = config.natsUrl;
      names = namesFor(config.namespace);
      rate = numberFlag('rate', values.rate, 0, 0);
    } catch (error) {
      console.error(`segment publish: ${error instanceof Error ? error.message : String(error)}\n\n${usage}`);
      return 2;
    }

    const nc = await connectNats({ servers: natsUrl, name: 'segment publish' });
    const publisher = new PipelinedPublisher(nc);
    const tally: Tally = { published: 0, duplicates: 0, rejected: 0, failed: 0 };
    const progress = process.stderr.isTTY ? startProgress(tally) : undefined;
    const report = (text: string) => {
      progress?.clear();
      process.stderr.write(`${text}\n`);
    };
    // Why reading stopped early, if it did: --strict, no events stream, or a signal.
    let stop: string | undefined;
    let noStream = false;
    shutdownSignal(() => {
      // Stop reading (stdin may be a terminal with nothing more to say), then settle what is in flight.
      stop ??= 'interrupted';
      process.stdin.destroy();
    });
    const started = performance.now();

    const source = readEvents(process.stdin, {
      names,
      rate,
      shouldStop: () => stop !== undefined,
      onInvalid(line, errors) {
        tally.rejected++;
        report(`line ${line}: ${errors.join('; ')}`);
        if (values.strict) stop ??= `stopped at line ${line} (--strict)`;
      },
    });
    try {
      await publisher.publishMany(source, (item, ack, error) => {
        if (ack) {
          if (ack.duplicate) tally.duplicates++;
          else tally.published++;
          return;
        }
        tally.failed++;
        if (error!.code === 'SEGMENT_PUBLISH_NO_STREAM') {
          // Every later event would fail the same way: say it once, stop reading.
          if (!noStream) report(`segment publish: no stream captures ${error!.subject}: run \`segment setup --namespace ${names.namespace}\` first (it creates ${names.events.stream})`);
          noStream = true;
          stop ??= 'no events stream';
        } else {
          report(`line ${item.line}: not published: ${error!.message}`);
        }
      });
    } finally {
      progress?.stop();
      await publisher.close();
      await nc.close();
    }

    const seconds = (performance.now() - started) / 1000;
    const stored = tally.published + tally.duplicates;
    const parts = [`published ${tally.published}`, `duplicates ${tally.duplicates}`, `rejected ${tally.rejected}`];
    if (tally.failed > 0) parts.push(`failed ${tally.failed}`);
    parts.push(`in ${seconds.toFixed(2)} s (${Math.round(stored / Math.max(seconds, 1e-3))} events/s)`);
    process.stderr.write(`segment publish: ${parts.join(', ')}${stop === undefined ? '' : ` — ${stop}`}\n`);
    if (tally.rejected > 0 || tally.failed > 0) return 1;
    return stop === 'interrupted' ? 130 : 0;
  },
};

interface ReadOptions {
  names: Names;
  /** Events per second, 0 for unlimited. */
  rate: number;
  shouldStop(): boolean;
  onInvalid(line: number, errors: string[]): void;
}

/**
 * Splits stdin into lines on the bytes (no readline: one scan per chunk) and yields the valid
 * events of each chunk as one batch, so the publisher sends a chunk's events in one socket write.
 * The published payload is the line's own bytes: no re-encoding.
 */
async function* readEvents(input: AsyncIterable<Buffer>, options: ReadOptions): AsyncGenerator<EventItem[]> {
  const { names, rate, shouldStop, onInvalid } = options;
  const subjects = new Map<number, string>();
  const subjectOf = (vendor: number) => {
    let subject = subjects.get(vendor);
    if (subject === undefined) subjects.set(vendor, (subject = names.events.subject(vendor)));
    return subject;
  };
  const started = performance.now();
  let sent = 0;
  let lineNumber = 0;
  let carry: Buffer | undefined;

  /** The event of one line, or undefined (reported, or blank). `end` excludes the newline. */
  const parseLine = (chunk: Buffer, start: number, end: number): EventItem | undefined => {
    lineNumber++;
    if (end > start && chunk[end - 1] === 0x0d) end--; // CRLF
    if (lineNumber === 1 && chunk[start] === 0xef && chunk[start + 1] === 0xbb && chunk[start + 2] === 0xbf) start += 3; // BOM
    const text = chunk.toString('utf8', start, end);
    if (text.trim() === '') return undefined;
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (error) {
      onInvalid(lineNumber, [`not JSON: ${error instanceof Error ? error.message : String(error)}`]);
      return undefined;
    }
    const result = validators.event.check(document);
    if (!result.ok) {
      onInvalid(lineNumber, result.errors.map(formatFieldError));
      return undefined;
    }
    const event = result.document;
    return { line: lineNumber, subject: subjectOf(event.segment.vendor), payload: chunk.subarray(start, end), msgId: event.event };
  };

  /** Milliseconds until the next event is due under --rate (0 or less: send now). */
  const dueIn = () => (rate > 0 ? started + (sent * 1000) / rate - performance.now() : 0);

  try {
    for await (const chunk of input) {
      const data = carry === undefined ? chunk : Buffer.concat([carry, chunk]);
      carry = undefined;
      let batch: EventItem[] = [];
      let start = 0;
      for (let end = data.indexOf(newline); end !== -1 && !shouldStop(); end = data.indexOf(newline, start)) {
        const item = parseLine(data, start, end);
        start = end + 1;
        if (item === undefined) continue;
        const wait = dueIn();
        if (wait > 0) {
          if (batch.length > 0) yield batch;
          batch = [];
          await sleep(Math.max(wait, rateSliceMs));
        }
        batch.push(item);
        sent++;
      }
      if (batch.length > 0) yield batch;
      if (shouldStop()) return;
      if (start < data.length) carry = data.subarray(start);
    }
  } catch (error) {
    // stdin destroyed on purpose (a signal): the iteration ends with a premature close.
    if (shouldStop()) return;
    throw error;
  }
  // The last line may lack its newline.
  if (carry !== undefined) {
    const item = parseLine(carry, 0, carry.length);
    if (item !== undefined) {
      const wait = dueIn();
      if (wait > 0) await sleep(wait);
      yield [item];
    }
  }
}

/** A self-overwriting line on a terminal: rate over the last interval, totals. */
function startProgress(tally: Tally): { clear(): void; stop(): void } {
  let shown = false;
  let last = { at: performance.now(), stored: 0 };
  const timer = setInterval(() => {
    const now = performance.now();
    const stored = tally.published + tally.duplicates;
    const rate = Math.round(((stored - last.stored) * 1000) / (now - last.at));
    last = { at: now, stored };
    process.stderr.write(`\r\x1b[K${rate} events/s, ${tally.published} published, ${tally.duplicates} duplicates, ${tally.rejected} rejected`);
    shown = true;
  }, progressIntervalMs);
  timer.unref();
  const clear = () => {
    if (shown) process.stderr.write('\r\x1b[K');
    shown = false;
  };
  return {
    clear,
    stop() {
      clearInterval(timer);
      clear();
    },
  };
}
