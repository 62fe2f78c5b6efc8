// The events of a run: generated once, deterministically (seed + a ticking clock at a fixed
// offset), and held as ready-to-send NDJSON bodies, so no phase pays for generation and every phase
// sends the very same bytes. The reference model is built from those bytes after the measured
// phases: held through them, its heap (every event, 1M and more) made each of the bench's major
// collections cost ~2 s of CPU, and one landing in a phase took that from the pipeline (a 1M run:
// the latency phase's first two seconds at p50 219-364 ms, then 17-51 ms).
//
// Requests in flight at once are stored in no set order, and the documents of a key depend on
// the order of its events (`member`, `value`, toggles). So events are split into lanes by user:
// a lane sends one request at a time, and each user's events reach the stream in generation
// order — the order the reference model reads them in.
import type { Event } from '@segment/model';
import { EventGenerator, ReferenceModel, tickClock } from '@segment/segment';

/** One request's worth of events: the NDJSON body and where each line starts. */
export interface Chunk {
  /** The lane that sends this chunk; a lane's chunks go in order, one request at a time. */
  readonly lane: number;
  readonly body: Buffer;
  /** Start of line i; `offsets[count]` is the body length. A line ends with `\n`. */
  readonly offsets: Uint32Array;
  readonly vendors: Uint32Array;
  readonly count: number;
}

export interface LatencyEvents {
  /** JSON lines, without the newline. */
  readonly lines: readonly string[];
  /** The lane of each line, of `laneCount`. */
  readonly lanes: Uint8Array;
  readonly laneCount: number;
  /** Index in `lines` → probe user, for every probe. */
  readonly probes: ReadonlyMap<number, string>;
}

export interface Workload {
  /** Every chunk, lane by lane (each lane's in sending order). */
  readonly chunks: readonly Chunk[];
  readonly lanes: number;
  readonly events: number;
  readonly latency: LatencyEvents;
  /** 1: every user is checked; K: users whose hash is 0 mod K (and every probe). */
  readonly sampleEvery: number;
  inSample(user: string): boolean;
}

export interface WorkloadOptions {
  events: number;
  seed: number;
  /** Events per NDJSON body. */
  batchSize: number;
  /** Requests in flight at once, each lane one (at most 255). */
  lanes: number;
  /** Events of the latency phase, after the others (so their ids are new). */
  latencyEvents: number;
  /** Every `probeEvery`-th latency event is a probe: a new user, an add. */
  probeEvery: number;
  /** Above this many events, the reference model keeps only a sample of users (memory). */
  fullCheckLimit: number;
}

/** 2021-03-19, the example's date; 37 ms per event, -04:00: identical bytes on every run and host. */
const clockStart = Date.UTC(2021, 2, 19);
const tickMs = 37;
const utcOffsetMinutes = () => -240;

/** A probe's user: unique, so its membership row appears for the first time when it is visible. */
export const probeUserPrefix = 'probe-';

/** The byte offset of the event id in a line written by JSON.stringify of a generated event. */
const idStart = '{"event":"'.length;
const uuidLength = 36;

/** A line's event id: the generator's documents start with it, and the id is a UUID (no escapes). */
export function eventIdAt(chunk: Chunk, index: number): string {
  const start = chunk.offsets[index]! + idStart;
  return chunk.body.toString('latin1', start, start + uuidLength);
}

/** One line of a chunk, without its newline, as bytes (no copy). */
export function lineAt(chunk: Chunk, index: number): Buffer {
  return chunk.body.subarray(chunk.offsets[index]!, chunk.offsets[index + 1]! - 1);
}

export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The run's events in generation order: the throughput phase's, then the latency phase's (probes made new users' adds). */
export function* workloadEvents(options: Pick<WorkloadOptions, 'events' | 'seed' | 'latencyEvents' | 'probeEvery'>): Generator<{ event: Event; phase: 'throughput' | 'latency'; probe: boolean }> {
  const generator = new EventGenerator({ seed: options.seed, clock: tickClock(clockStart, tickMs), utcOffsetMinutes });
  for (let i = 0; i < options.events; i++) yield { event: generator.nextEvent(), phase: 'throughput', probe: false };
  let probes = 0;
  for (let i = 0; i < options.latencyEvents; i++) {
    const event = generator.nextEvent();
    const probe = i % options.probeEvery === options.probeEvery - 1;
    if (probe) {
      event.user = `${probeUserPrefix}${probes++}`;
      delete event.remove;
    }
    yield { event, phase: 'latency', probe };
  }
}

export function generateWorkload(options: WorkloadOptions): Workload {
  // Memberships, profiles and toggles are all per user, so the documents of a subset of users
  // depend only on those users' events: a sample by user is exact for the users it keeps.
  const sampleEvery = options.events <= options.fullCheckLimit ? 1 : Math.ceil(options.events / options.fullCheckLimit);
  const inSample = (user: string) => sampleEvery === 1 || user.startsWith(probeUserPrefix) || fnv1a(user) % sampleEvery === 0;

  interface Builder {
    lines: string[];
    vendors: number[];
  }
  const laneOf = (user: string) => fnv1a(user) % options.lanes;
  const byLane: Chunk[][] = Array.from({ length: options.lanes }, () => []);
  const builders: Builder[] = Array.from({ length: options.lanes }, () => ({ lines: [], vendors: [] }));
  const seal = (lane: number) => {
    const { lines, vendors } = builders[lane]!;
    if (lines.length === 0) return;
    const offsets = new Uint32Array(lines.length + 1);
    let bytes = 0;
    lines.forEach((line, i) => {
      offsets[i] = bytes;
      bytes += Buffer.byteLength(line) + 1;
    });
    offsets[lines.length] = bytes;
    byLane[lane]!.push({ lane, body: Buffer.from(`${lines.join('\n')}\n`), offsets, vendors: Uint32Array.from(vendors), count: lines.length });
    builders[lane] = { lines: [], vendors: [] };
  };
  const latencyLines: string[] = [];
  const latencyLanes = new Uint8Array(options.latencyEvents);
  const probes = new Map<number, string>();
  for (const { event, phase, probe } of workloadEvents(options)) {
    const line = JSON.stringify(event);
    const lane = laneOf(event.user);
    if (phase === 'latency') {
      if (probe) probes.set(latencyLines.length, event.user);
      latencyLanes[latencyLines.length] = lane;
      latencyLines.push(line);
      continue;
    }
    if (!line.startsWith('{"event":"') || event.event.length !== uuidLength) throw new Error(`unexpected generated line ${line}`);
    const builder = builders[lane]!;
    builder.lines.push(line);
    builder.vendors.push(event.segment.vendor);
    if (builder.lines.length === options.batchSize) seal(lane);
  }
  for (let lane = 0; lane < options.lanes; lane++) seal(lane);

  return { chunks: byLane.flat(), lanes: options.lanes, events: options.events, latency: { lines: latencyLines, lanes: latencyLanes, laneCount: options.lanes, probes }, sampleEvery, inSample };
}

/**
 * The reference model of a run's events (or of its sampled users'), read back from the bytes sent:
 * the chunks lane by lane, then the latency phase. That is not the generation order, but each
 * user's events keep theirs (a user has one lane), and every document is per user.
 */
export function referenceOf(workload: Workload): ReferenceModel {
  const reference = new ReferenceModel();
  const ingestLine = (line: string) => {
    const event = JSON.parse(line) as Event;
    if (workload.inSample(event.user)) reference.ingest([event]);
  };
  for (const chunk of workload.chunks) {
    for (let i = 0; i < chunk.count; i++) ingestLine(lineAt(chunk, i).toString('utf8'));
  }
  for (const line of workload.latency.lines) ingestLine(line);
  return reference;
}
