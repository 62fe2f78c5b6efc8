// The two yardsticks of a run, on the same events: the raw JetStream publish rate (what ingest
// can at best approach) and a naive pipeline that upserts one event at a time into Postgres
// (what one writes without combining).
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Event } from '@segment/model';
import { defaultProvisionConfig, PipelinedPublisher, type Names } from '@segment/nats';
import pg from 'pg';
import { eventIdAt, lineAt, type Chunk } from './workload.ts';

export interface RawStream {
  readonly stream: string;
  subject(vendor: number): string;
}

/** A stream of the namespace's own for the raw baseline, beside (not inside) the pipeline's subjects. */
export function rawStreamOf(names: Names): RawStream {
  return { stream: `${names.namespace.toUpperCase()}_RAW`, subject: (vendor) => `${names.namespace}.raw.${vendor}` };
}

export interface RawPublishResult {
  events: number;
  seconds: number;
  perSecond: number;
}

/**
 * Publishes every event into a fresh stream configured like the events stream (file storage, the
 * same duplicate window, Nats-Msg-Id = event id) with the pipelined publisher, then deletes it.
 */
export async function rawPublish(nc: NatsConnection, names: Names, chunks: readonly Chunk[]): Promise<RawPublishResult> {
  const raw = rawStreamOf(names);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: raw.stream,
    subjects: [`${names.namespace}.raw.>`],
    storage: defaultProvisionConfig.storage,
    retention: 'limits',
    discard: 'old',
    num_replicas: 1,
    duplicate_window: defaultProvisionConfig.duplicateWindowMs * 1_000_000,
    max_msg_size: defaultProvisionConfig.maxMessageBytes,
  } as Parameters<typeof jsm.streams.add>[0]);
  const publisher = new PipelinedPublisher(nc);
  try {
    function* items() {
      for (const chunk of chunks) {
        for (let i = 0; i < chunk.count; i++) {
          yield { subject: raw.subject(chunk.vendors[i]!), payload: lineAt(chunk, i), msgId: eventIdAt(chunk, i) };
        }
      }
    }
    const started = performance.now();
    const summary = await publisher.publishMany(items());
    const seconds = (performance.now() - started) / 1000;
    if (summary.failed > 0) throw new Error(`raw publish: ${summary.failed} of ${summary.acked + summary.failed} publishes failed`);
    return { events: summary.acked, seconds, perSecond: summary.acked / seconds };
  } finally {
    await publisher.close();
    await deleteRawStream(nc, names);
  }
}

export async function deleteRawStream(nc: NatsConnection, names: Names): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(rawStreamOf(names).stream).catch(() => false);
}

export interface NaiveResult {
  events: number;
  seconds: number;
  perSecond: number;
}

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

/**
 * Upserts events one statement at a time over one connection, with the membership semantics in
 * SQL (first = earliest add, last = latest, member and value = last written, a missing value
 * never erases one), until `maxEvents` or `maxSeconds`, whichever comes first.
 */
export async function naiveUpserts(databaseUrl: string, schema: string, chunks: readonly Chunk[], limits: { maxEvents: number; maxSeconds: number }): Promise<NaiveResult> {
  const table = `${quote(schema)}.naive_memberships`;
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'segment-bench-naive' });
  await client.connect();
  try {
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${table} (
        vendor integer NOT NULL,
        segment_name text COLLATE "C" NOT NULL,
        "user" text COLLATE "C" NOT NULL,
        first text,
        first_at timestamptz,
        last text NOT NULL,
        last_at timestamptz NOT NULL,
        member boolean NOT NULL,
        value text,
        PRIMARY KEY (vendor, segment_name, "user")
      )`);
    const upsert = {
      name: 'naive_upsert',
      text: `
        INSERT INTO ${table} AS m (vendor, segment_name, "user", first, first_at, last, last_at, member, value)
        VALUES ($1, $2, $3, $4::text, $4::text::timestamptz, $5::text, $5::text::timestamptz, $6, $7)
        ON CONFLICT (vendor, segment_name, "user") DO UPDATE SET
          first = CASE WHEN excluded.first_at IS NOT NULL AND (m.first_at IS NULL OR excluded.first_at < m.first_at) THEN excluded.first ELSE m.first END,
          first_at = CASE WHEN excluded.first_at IS NOT NULL AND (m.first_at IS NULL OR excluded.first_at < m.first_at) THEN excluded.first_at ELSE m.first_at END,
          last = CASE WHEN excluded.last_at > m.last_at THEN excluded.last ELSE m.last END,
          last_at = GREATEST(m.last_at, excluded.last_at),
          member = excluded.member,
          value = COALESCE(excluded.value, m.value)`,
    };
    const started = performance.now();
    const deadline = started + limits.maxSeconds * 1000;
    let events = 0;
    outer: for (const chunk of chunks) {
      for (let i = 0; i < chunk.count; i++) {
        if (events >= limits.maxEvents || performance.now() >= deadline) break outer;
        const event = JSON.parse(lineAt(chunk, i).toString('utf8')) as Event;
        const add = event.remove !== true;
        await client.query({
          ...upsert,
          values: [event.segment.vendor, event.segment.name, event.user, add ? event.timestamp : null, event.timestamp, add, add ? (event.value ?? null) : null],
        });
        events++;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    return { events, seconds, perSecond: events / seconds };
  } finally {
    await client.end();
  }
}
