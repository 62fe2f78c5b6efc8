// `segment dlq`: look at the dead letters of a namespace, and send them back through the pipeline
// once whatever rejected them is fixed.
import { jetstreamManager, type JsMsg, type StoredMsg } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { loadConfig } from '@segment/config';
import { connectNats, headers, namesFor, PipelinedPublisher, readStreamPages, type Names } from '@segment/nats';
import { numberFlag, parseCommandArgs, type Command } from '../command.ts';

const usage = `usage: segment dlq list [--limit N] [--json] [options]
       segment dlq replay (--seq N ... | --all) [--dry-run] [options]

Dead letters are input the pipeline could not use (not JSON, failing the event schema, published
under another vendor's subject), kept with their original bytes and the reason.

  list      prints the dead letters, oldest first: dead-letter sequence, time, the subject and
            sequence it came from, the reason, and the payload (cut at ${200} characters)
  replay    publishes dead letters again, unchanged, to the subject they came from, and removes
            each one from the dead-letter stream once its publish is acknowledged. A letter that
            is still invalid is dead-lettered again, with a new reason.

options:
  --limit N          list: at most N letters (default 100; 0 lists all)
  --json             list: one JSON object a line, with the whole payload
  --seq N            replay: the dead letter with this sequence (repeatable)
  --all              replay: every dead letter there is when the command starts
  --dry-run          replay: say what would be replayed, change nothing
  --nats URL         NATS servers (env SEGMENT_NATS_URL, default nats://127.0.0.1:4222)
  --namespace NAME   streams/buckets namespace (env SEGMENT_NAMESPACE, default segment)

exit codes: 0 done, 1 a letter could not be found or replayed (the others were), 2 usage error`;

const options = {
  limit: { type: 'string' },
  json: { type: 'boolean' },
  seq: { type: 'string', multiple: true },
  all: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  nats: { type: 'string' },
  namespace: { type: 'string' },
} as const;

/** The payload shown by `list`; --json prints it whole. */
const payloadPreviewChars = 200;
/** Letters read, published and removed per round: bounds memory however large the queue. */
const replayBatch = 256;

/** One dead letter as stored in the DLQ stream. */
interface DeadLetter {
  seq: number;
  time: string;
  sourceStream: string | undefined;
  sourceSubject: string | undefined;
  sourceSeq: number | undefined;
  reason: string | undefined;
  data: Uint8Array;
}

const text = new TextDecoder();

function letterOf(seq: number, time: string, header: MsgHdrs | undefined, data: Uint8Array): DeadLetter {
  const get = (name: string) => (header?.has(name) ? header.get(name) : undefined);
  const sourceSeq = get(headers.deadSequence);
  return {
    seq,
    time,
    sourceStream: get(headers.deadStream),
    sourceSubject: get(headers.deadSubject),
    sourceSeq: sourceSeq === undefined ? undefined : Number(sourceSeq),
    reason: get(headers.deadReason),
    data,
  };
}

/** The dead letters in order, in pages, up to the stream's last sequence when called (see readStreamPages). */
async function* readLetters(nc: NatsConnection, stream: string): AsyncGenerator<DeadLetter[]> {
  for await (const page of readStreamPages(nc, stream, { pageSize: replayBatch })) yield page.map(letterFromJs);
}

function letterFromJs(message: JsMsg): DeadLetter {
  return letterOf(message.seq, message.timestamp, message.headers, message.data);
}

function letterFromStored(message: StoredMsg): DeadLetter {
  return letterOf(message.seq, message.timestamp, message.header, message.data);
}

function describe(letter: DeadLetter): string {
  const payload = text.decode(letter.data);
  const preview = payload.length > payloadPreviewChars ? `${payload.slice(0, payloadPreviewChars)}… (${letter.data.length} bytes)` : payload;
  return [
    `#${letter.seq}  ${letter.time}  from ${letter.sourceSubject ?? '(unknown subject)'} seq ${letter.sourceSeq ?? '?'}${letter.sourceStream ? ` (${letter.sourceStream})` : ''}`,
    `  reason:  ${letter.reason ?? '(none given)'}`,
    `  payload: ${preview}`,
  ].join('\n');
}

function asJson(letter: DeadLetter): string {
  return JSON.stringify({
    seq: letter.seq,
    time: letter.time,
    sourceStream: letter.sourceStream,
    sourceSubject: letter.sourceSubject,
    sourceSeq: letter.sourceSeq,
    reason: letter.reason,
    payload: text.decode(letter.data),
  });
}

async function list(nc: NatsConnection, names: Names, limit: number, json: boolean): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const stream = names.deadLetters.stream;
  const { state } = await jsm.streams.info(stream);
  if (!json) console.log(`${stream}: ${state.messages} dead letter${state.messages === 1 ? '' : 's'}`);
  let shown = 0;
  pages: for await (const page of readLetters(nc, stream)) {
    for (const letter of page) {
      if (limit > 0 && shown >= limit) break pages;
      console.log(json ? asJson(letter) : describe(letter));
      shown++;
    }
  }
  if (!json && shown < state.messages) console.log(`… ${state.messages - shown} more (--limit ${state.messages} or --limit 0 shows them)`);
  return 0;
}

interface ReplayOptions {
  seqs: number[] | 'all';
  dryRun: boolean;
}

/** Where a letter may go back to: only a vendor subject of this namespace's events stream. */
function replayTarget(names: Names, letter: DeadLetter): { subject: string } | { problem: string } {
  if (letter.sourceStream !== undefined && letter.sourceStream !== names.events.stream) {
    return { problem: `it came from stream ${letter.sourceStream}, not ${names.events.stream}` };
  }
  const subject = letter.sourceSubject;
  if (subject === undefined) return { problem: `it has no ${headers.deadSubject} header` };
  if (names.events.vendorOf(subject) === undefined) return { problem: `its subject ${subject} is not a vendor subject of ${names.events.stream}` };
  return { subject };
}

async function replay(nc: NatsConnection, names: Names, { seqs, dryRun }: ReplayOptions): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const stream = names.deadLetters.stream;
  const publisher = new PipelinedPublisher(nc);
  let replayed = 0;
  let failed = 0;

  const replayPage = async (letters: DeadLetter[]) => {
    const outcomes = await Promise.all(
      letters.map(async (letter) => {
        const target = replayTarget(names, letter);
        if ('problem' in target) {
          console.error(`#${letter.seq}: not replayed: ${target.problem}`);
          return false;
        }
        if (dryRun) {
          console.log(`#${letter.seq}: would replay to ${target.subject} (was seq ${letter.sourceSeq ?? '?'}; ${letter.reason ?? 'no reason given'})`);
          return true;
        }
        try {
          // The id makes a second run after a crash between publish and delete a no-op. Not the
          // event's id: the original publish used that, and it may still be in the duplicate window.
          const ack = await publisher.publish(target.subject, letter.data, { msgId: `segment-dlq-replay:${stream}:${letter.seq}` });
          await jsm.streams.deleteMessage(stream, letter.seq, false);
          console.log(`#${letter.seq}: replayed to ${target.subject} as seq ${ack.seq}${ack.duplicate ? ' (already there)' : ''}; removed from ${stream}`);
          return true;
        } catch (error) {
          console.error(`#${letter.seq}: replay failed: ${error instanceof Error ? error.message : String(error)}`);
          return false;
        }
      }),
    );
    for (const ok of outcomes) ok ? replayed++ : failed++;
  };

  try {
    if (seqs === 'all') {
      for await (const page of readLetters(nc, stream)) await replayPage(page);
    } else {
      for (let i = 0; i < seqs.length; i += replayBatch) {
        const page: DeadLetter[] = [];
        for (const seq of seqs.slice(i, i + replayBatch)) {
          const message = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
          if (message) page.push(letterFromStored(message));
          else {
            console.error(`#${seq}: no such dead letter in ${stream}`);
            failed++;
          }
        }
        await replayPage(page);
      }
    }
  } finally {
    await publisher.close();
  }
  console.log(`${dryRun ? 'would replay' : 'replayed'} ${replayed} dead letter${replayed === 1 ? '' : 's'}${failed > 0 ? `, ${failed} not` : ''}`);
  return failed > 0 ? 1 : 0;
}

export const command: Command = {
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, options, usage, true);
    const [action, ...extra] = positionals;
    const usageError = (message: string) => {
      console.error(`segment dlq: ${message}\n\n${usage}`);
      return 2;
    };
    if (extra.length > 0) return usageError(`unexpected arguments: ${extra.join(' ')}`);
    if (action !== 'list' && action !== 'replay') return usageError(action === undefined ? 'say list or replay' : `unknown action "${action}"`);

    let run: (nc: NatsConnection, names: Names) => Promise<number>;
    try {
      if (action === 'list') {
        if (values.seq || values.all || values['dry-run']) return usageError('--seq, --all and --dry-run are for replay');
        const limit = numberFlag('limit', values.limit, 100, 0);
        if (!Number.isInteger(limit)) throw new Error(`--limit must be a whole number, got "${values.limit}"`);
        run = (nc, names) => list(nc, names, limit, values.json === true);
      } else {
        if (values.limit !== undefined || values.json) return usageError('--limit and --json are for list');
        if ((values.all === true) === (values.seq !== undefined)) return usageError('replay needs either --seq N (repeatable) or --all');
        const seqs = values.all ? ('all' as const) : values.seq!.map((raw) => numberFlag('seq', raw, 0, 1));
        if (seqs !== 'all' && !seqs.every(Number.isInteger)) throw new Error(`--seq must be a whole number, got ${values.seq!.join(', ')}`);
        run = (nc, names) => replay(nc, names, { seqs: seqs === 'all' ? 'all' : [...new Set(seqs)], dryRun: values['dry-run'] === true });
      }
    } catch (error) {
      return usageError(error instanceof Error ? error.message : String(error));
    }

    const config = loadConfig(process.env, { natsUrl: values.nats, namespace: values.namespace });
    const names = namesFor(config.namespace);
    const nc = await connectNats({ servers: config.natsUrl, name: `segment dlq ${action}` });
    try {
      return await run(nc, names);
    } finally {
      await nc.close();
    }
  },
};
