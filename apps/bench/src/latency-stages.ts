// Where a probe's latency went, from the timestamps the server gave the messages it passed through:
// sent → stored in the events stream (gateway and ingest) → its membership stored in the derived
// stream (derivation) → seen in Postgres (projection, plus up to one poll interval).
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { headers, readStreamPages, type Names } from '@segment/nats';
import { percentile, type ProbeTiming } from './latency.ts';

/** The streams' last sequences before the latency phase: its messages come after them. */
export interface StreamMarks {
  events: number;
  memberships: number;
}

export interface HopFigures {
  p50Ms: number;
  p99Ms: number;
  /** The mean over the probes whose whole latency was at or above its p99. */
  slowestMeanMs: number;
}

export interface LatencyByStage {
  /** Probes whose event and derived message were both found. */
  probes: number;
  gateway: HopFigures;
  derive: HopFigures;
  project: HopFigures;
}

const pageSize = 1_000;

export async function markStreams(nc: NatsConnection, names: Names): Promise<StreamMarks> {
  const jsm = await jetstreamManager(nc);
  const [events, memberships] = await Promise.all([jsm.streams.info(names.events.stream), jsm.streams.info(names.derived.memberships.stream)]);
  return { events: events.state.last_seq, memberships: memberships.state.last_seq };
}

/** A message's server timestamp in epoch ms (nanoseconds as a double: a quarter-microsecond off at most). */
const epochMsOf = (timestampNanos: number): number => timestampNanos / 1e6;

/** Splits each seen probe's latency into its hops, from the messages stored since `marks`. */
export async function latencyByStage(nc: NatsConnection, names: Names, marks: StreamMarks, seen: readonly ProbeTiming[]): Promise<LatencyByStage> {
  const probes = new Map(seen.map((probe) => [probe.user, probe]));
  const stored = new Map<string, { vendor: number; seq: number; atMs: number }>();
  for await (const page of readStreamPages(nc, names.events.stream, { pageSize, fromSeq: marks.events + 1 })) {
    for (const message of page) {
      const { user } = message.json<{ user: string }>();
      const vendor = names.events.vendorOf(message.subject);
      if (probes.has(user) && vendor !== undefined) stored.set(user, { vendor, seq: message.seq, atMs: epochMsOf(message.info.timestampNanos) });
    }
  }
  // By vendor, the derived messages in the order stored: the first whose source range holds an event carried it.
  const derived = new Map<number, { firstSeq: number; lastSeq: number; atMs: number }[]>();
  for await (const page of readStreamPages(nc, names.derived.memberships.stream, { pageSize, fromSeq: marks.memberships + 1 })) {
    for (const message of page) {
      const partition = Number(message.headers?.get(headers.sourcePartition));
      const [firstSeq, lastSeq] = (message.headers?.get(headers.sourceRange) ?? '').split('-').map(Number);
      let list = derived.get(partition);
      if (!list) derived.set(partition, (list = []));
      list.push({ firstSeq: firstSeq!, lastSeq: lastSeq!, atMs: epochMsOf(message.info.timestampNanos) });
    }
  }
  const hops: { total: number; gateway: number; derive: number; project: number }[] = [];
  for (const probe of seen) {
    const event = stored.get(probe.user);
    const carrier = event && derived.get(event.vendor)?.find((m) => m.firstSeq <= event.seq && event.seq <= m.lastSeq);
    if (!event || !carrier) continue;
    hops.push({ total: probe.seenAtMs - probe.sentAtMs, gateway: event.atMs - probe.sentAtMs, derive: carrier.atMs - event.atMs, project: probe.seenAtMs - carrier.atMs });
  }
  const totalP99 = percentile(hops.map((h) => h.total).sort((a, b) => a - b), 99);
  const slowest = hops.filter((h) => h.total >= totalP99);
  const figures = (hop: 'gateway' | 'derive' | 'project'): HopFigures => {
    const values = hops.map((h) => h[hop]).sort((a, b) => a - b);
    return { p50Ms: percentile(values, 50), p99Ms: percentile(values, 99), slowestMeanMs: slowest.reduce((sum, h) => sum + h[hop], 0) / slowest.length };
  };
  return { probes: hops.length, gateway: figures('gateway'), derive: figures('derive'), project: figures('project') };
}
