// `segment generate`: the example's synthetic events as JSON lines on stdout, as fast or as paced as asked.
import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import { parseInstant } from '@segment/model';
import { EventGenerator, exampleModel, offsetOfTimestamp, tickClock } from '@segment/segment';
import { integerFlag, numberFlag, parseCommandArgs, type Command } from '../command.ts';

const usage = `usage: segment generate [options]

Writes synthetic segment events, one JSON document a line, to stdout: the model of Estuary Flow's
examples/segment/generate.go. Errors go to stderr; nothing else is printed.

output:
  --count N               events to write, then stop (default: unbounded)
  --rate R                events per second (default: as fast as stdout takes them)
  --seed S                PRNG seed; the same seed gives the same events apart from timestamps (default ${exampleModel.seed})
  --start TIME            first timestamp, RFC 3339 (default: now); its offset, if given, is used for every timestamp
  --tick MS               advance timestamps MS milliseconds per event instead of with wall time;
                          with --start, output is identical run after run

model:
  --segments N            segments are 0..N, Zipf-distributed (default ${exampleModel.segments})
  --skew S                Zipf skew, P(k) ∝ (1+k)^-S (default ${exampleModel.skew})
  --vendors N             vendor = 1 + segment mod N (default ${exampleModel.vendors})
  --users N               users are 0..N (default ${exampleModel.users})
  --user-sigma X          user = floor(users · min(1, |N(0,1)| / X)) (default ${exampleModel.userSigma})
  --add-probability P     chance an event is an add rather than a remove (default ${exampleModel.addProbability})
  --repeat-probability P  chance an event repeats an earlier sample (default ${exampleModel.repeatProbability})
  --reservoir N           samples kept for repeats (default ${exampleModel.reservoir})

bots:
  --bots F                fraction of events from bots: bursts over a few segments (default ${exampleModel.bots})
  --bot-users N           number of bots, named bot-0000.. (default ${exampleModel.botUsers})
  --bot-burst N           mean events per bot burst (default ${exampleModel.botBurst})`;

const options = {
  count: { type: 'string' },
  rate: { type: 'string' },
  seed: { type: 'string' },
  start: { type: 'string' },
  tick: { type: 'string' },
  segments: { type: 'string' },
  skew: { type: 'string' },
  vendors: { type: 'string' },
  users: { type: 'string' },
  'user-sigma': { type: 'string' },
  'add-probability': { type: 'string' },
  'repeat-probability': { type: 'string' },
  reservoir: { type: 'string' },
  bots: { type: 'string' },
  'bot-users': { type: 'string' },
  'bot-burst': { type: 'string' },
} as const;

// 4,096 events (~600 KB) a write: 1,024 and 16,384 timed the same within noise (~2 s a million into a pipe).
const eventsPerChunk = 4096;
// With --rate, wake at most every 10 ms and write what has fallen due since.
const rateSliceMs = 10;

export const command: Command = {
  async run(args) {
    const { values } = parseCommandArgs(args, options, usage);
    const count = integerFlag('count', values.count, Infinity, 0);
    const rate = values.rate === undefined ? undefined : numberFlag('rate', values.rate, 0, Number.MIN_VALUE);
    const tick = values.tick === undefined ? undefined : numberFlag('tick', values.tick, 0, 0);
    const start = values.start === undefined ? undefined : parseStart(values.start);

    const generator = new EventGenerator({
      seed: integerFlag('seed', values.seed, exampleModel.seed, Number.MIN_SAFE_INTEGER),
      segments: integerFlag('segments', values.segments, exampleModel.segments, 0),
      skew: numberFlag('skew', values.skew, exampleModel.skew, 0),
      vendors: integerFlag('vendors', values.vendors, exampleModel.vendors, 1),
      users: integerFlag('users', values.users, exampleModel.users, 0),
      userSigma: numberFlag('user-sigma', values['user-sigma'], exampleModel.userSigma, Number.MIN_VALUE),
      addProbability: numberFlag('add-probability', values['add-probability'], exampleModel.addProbability, 0, 1),
      repeatProbability: numberFlag('repeat-probability', values['repeat-probability'], exampleModel.repeatProbability, 0, 1),
      reservoir: integerFlag('reservoir', values.reservoir, exampleModel.reservoir, 0),
      bots: numberFlag('bots', values.bots, exampleModel.bots, 0, 1),
      botUsers: integerFlag('bot-users', values['bot-users'], exampleModel.botUsers, 1),
      botBurst: numberFlag('bot-burst', values['bot-burst'], exampleModel.botBurst, 1),
      clock: clockFor(start?.epochMs, tick),
      ...(start?.offsetMinutes === undefined ? {} : { utcOffsetMinutes: () => start.offsetMinutes! }),
    });
    return pump(generator, count, rate);
  },
};

/** Writes events to stdout with backpressure; a closed pipe (`| head`) ends the run quietly. */
async function pump(generator: EventGenerator, count: number, rate: number | undefined): Promise<number> {
  const out = process.stdout;
  let closed = false;
  let failure: Error | undefined;
  out.on('error', (error: NodeJS.ErrnoException) => {
    closed = true;
    if (error.code !== 'EPIPE') failure = error;
  });
  out.on('close', () => (closed = true));

  const startedAt = performance.now();
  let written = 0;
  while (written < count && !closed) {
    let batch = Math.min(eventsPerChunk, count - written);
    if (rate !== undefined) {
      const due = Math.floor((rate * (performance.now() - startedAt)) / 1000) - written;
      if (due <= 0) {
        const untilNextMs = ((written + 1) / rate) * 1000 - (performance.now() - startedAt);
        await sleep(Math.max(rateSliceMs, untilNextMs));
        continue;
      }
      batch = Math.min(batch, due);
    }
    const text = generator.nextLines(batch);
    written += batch;
    if (!out.write(text)) {
      await drainedOrClosed(out);
    } else {
      // Synchronous writes (files, Linux pipes) report EPIPE on a later tick: let it arrive.
      await yieldToEventLoop();
    }
  }
  if (failure) throw failure;
  return 0;
}

/** Resolves on 'drain' or 'close', removing both listeners: one wait per chunk must not pile them up. */
function drainedOrClosed(out: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
  });
}

function clockFor(startMs: number | undefined, tickMs: number | undefined): () => number {
  if (tickMs !== undefined) return tickClock(startMs ?? Date.now(), tickMs);
  if (startMs === undefined) return Date.now;
  const shift = startMs - Date.now();
  return () => Date.now() + shift;
}

function parseStart(text: string): { epochMs: number; offsetMinutes: number | undefined } {
  try {
    return { epochMs: parseInstant(text).ms, offsetMinutes: offsetOfTimestamp(text) };
  } catch {
    throw new Error(`--start must be an RFC 3339 date-time like 2021-03-19T13:32:26-04:00, got "${text}"`);
  }
}

