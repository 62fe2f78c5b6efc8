// Publish-to-visible latency at a fixed rate: events go to the gateway in small batches every
// 10 ms; every few events one is a probe (a new user, an add), and a poller asks Postgres every
// 10 ms which outstanding probes' membership rows exist. Latency = first seen - sent.
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { SegmentDatabase } from '@segment/postgres';
import type { IngestClient } from './ingest-client.ts';
import type { LatencyEvents } from './workload.ts';

export interface LatencyOptions {
  client: IngestClient;
  database: SegmentDatabase;
  events: LatencyEvents;
  /** Events per second. */
  rate: number;
  /** How long after the last send to wait for the remaining probes. */
  settleTimeoutMs: number;
  signal?: AbortSignal;
}

/** One probe that was seen: its user, and when it was sent and first seen (epoch ms, comparable with the server's message timestamps). */
export interface ProbeTiming {
  user: string;
  sentAtMs: number;
  seenAtMs: number;
}

export interface LatencyResult {
  rate: number;
  /** Events sent, and the achieved rate. */
  sent: number;
  sentPerSecond: number;
  probes: number;
  /** Probes never seen within the settle timeout. */
  lost: number;
  /** Probe latencies in ms, ascending. */
  latenciesMs: number[];
  /** The probes seen, in the order they were seen. */
  seen: ProbeTiming[];
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** By second of the phase (when the probe was sent): its probes' median and slowest, in ms. */
  bySecond: SecondFigures[];
}

export interface SecondFigures {
  p50Ms: number;
  maxMs: number;
}

const sliceMs = 10;
const pollMs = 10;

/** Nearest-rank percentile of ascending values (NaN when there are none). */
export function percentile(ascending: readonly number[], p: number): number {
  if (ascending.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * ascending.length);
  return ascending[Math.min(ascending.length, Math.max(1, rank)) - 1]!;
}

/** Whether the tail is a moment (a stall) or the steady state: the probes grouped by the second they were sent in. */
export function figuresBySecond(seen: readonly ProbeTiming[], startedAtMs: number): SecondFigures[] {
  const seconds: number[][] = [];
  for (const probe of seen) (seconds[Math.max(0, Math.floor((probe.sentAtMs - startedAtMs) / 1000))] ??= []).push(probe.seenAtMs - probe.sentAtMs);
  return Array.from(seconds, (latencies = []) => {
    latencies.sort((a, b) => a - b);
    return { p50Ms: percentile(latencies, 50), maxMs: latencies.at(-1) ?? Number.NaN };
  });
}

export async function measureLatency(options: LatencyOptions): Promise<LatencyResult> {
  const { client, database, events, rate } = options;
  const lines = events.lines;
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const seen: ProbeTiming[] = [];
  let failure: unknown;
  let sending = true;
  let settleDeadline = Infinity;
  // Now as epoch milliseconds, with performance.now()'s resolution, anchored to the wall clock as
  // the phase starts: the stage split compares these with the server's wall-clock timestamps, and
  // `performance.timeOrigin` (the process's start) had drifted ~1 s from them after a 10M run.
  const wallClockOffset = Date.now() - performance.now();
  const epochNow = (): number => wallClockOffset + performance.now();

  // The poller: one indexed query (memberships by user) for every probe still outstanding.
  const table = sql.id(database.schema, 'segment_memberships');
  const poller = (async () => {
    while (sending || sentAt.size > 0) {
      if (sentAt.size > 0) {
        const users = [...sentAt.keys()];
        const { rows } = await sql<{ user: string }>`SELECT "user" FROM ${table} WHERE "user" = ANY(${users})`.execute(database.db);
        const seenAt = epochNow();
        for (const { user } of rows) {
          const at = sentAt.get(user);
          if (at === undefined) continue;
          latencies.push(seenAt - at);
          seen.push({ user, sentAtMs: at, seenAtMs: seenAt });
          sentAt.delete(user);
        }
      }
      if ((!sending && performance.now() > settleDeadline) || options.signal?.aborted) break;
      await sleep(pollMs);
    }
  })().catch((error: unknown) => void (failure ??= error));

  // Per lane (see workload.ts), one request at a time: what falls due while one is in flight goes
  // in the lane's next request, so each user's events keep their order.
  const laneCount = events.laneCount;
  const pending: number[][] = Array.from({ length: laneCount }, () => []);
  const busy: (Promise<void> | undefined)[] = new Array(laneCount);
  const flushLane = (lane: number): void => {
    if (busy[lane] || pending[lane]!.length === 0 || failure !== undefined) return;
    const indexes = pending[lane]!;
    pending[lane] = [];
    const body = `${indexes.map((i) => lines[i]).join('\n')}\n`;
    busy[lane] = client.post(body).then(
      () => {
        busy[lane] = undefined;
        flushLane(lane);
      },
      (error: unknown) => {
        failure ??= error;
        busy[lane] = undefined;
      },
    );
  };
  const drained = async () => {
    while (busy.some((b) => b !== undefined) || (failure === undefined && pending.some((p) => p.length > 0))) {
      await Promise.all(busy);
      for (let lane = 0; lane < laneCount; lane++) flushLane(lane);
    }
  };

  const started = performance.now();
  const startedAtMs = epochNow();
  let next = 0;
  try {
    while (next < lines.length && failure === undefined && !options.signal?.aborted) {
      const due = Math.min(lines.length, Math.floor(((performance.now() - started) / 1000) * rate));
      if (due > next) {
        const now = epochNow();
        for (let i = next; i < due; i++) {
          const probe = events.probes.get(i);
          if (probe !== undefined) sentAt.set(probe, now);
          pending[events.lanes[i]!]!.push(i);
        }
        next = due;
        for (let lane = 0; lane < laneCount; lane++) flushLane(lane);
      }
      await sleep(sliceMs);
    }
    const sendSeconds = (performance.now() - started) / 1000;
    await drained();
    if (failure !== undefined) throw failure;
    settleDeadline = performance.now() + options.settleTimeoutMs;
    sending = false;
    await poller;
    if (failure !== undefined) throw failure;
    latencies.sort((a, b) => a - b);
    return {
      rate,
      sent: next,
      sentPerSecond: next / sendSeconds,
      probes: events.probes.size,
      lost: sentAt.size,
      latenciesMs: latencies,
      seen,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.at(-1) ?? Number.NaN,
      bySecond: figuresBySecond(seen, startedAtMs),
    };
  } finally {
    sending = false;
    settleDeadline = 0;
    await poller;
  }
}
