// What a run found: one result shape, printed as a markdown table and written as JSON.
import type { ExactnessResult } from './exactness.ts';
import type { LatencyByStage } from './latency-stages.ts';
import type { SecondFigures } from './latency.ts';
import { describeCheckpointActivity, describePostgresSettings, type CheckpointActivity, type PostgresSettings } from './postgres-settings.ts';
import type { StageName } from './processes.ts';
import type { DerivedCollection } from '@segment/nats';

export interface BenchResult {
  namespace: string;
  seed: number;
  /** The version the NATS server reported on connecting (its file store and duplicate window differ by release). */
  natsServerVersion: string;
  /** The Postgres server's settings that move the figures (memory, checkpoints, vacuum). */
  postgresSettings: PostgresSettings;
  /** The server's checkpointer during each phase (whole server). */
  postgresCheckpoints: Record<'throughput' | 'latency', CheckpointActivity>;
  /**
   * Derived messages of the throughput phase per collection: one per derivation transaction with
   * output for it, so fewer means larger transactions, combined more before projection.
   */
  derivedMessages: Record<DerivedCollection, number>;
  events: number;
  /** Events / (pipeline caught up - first POST): sustained end to end, every stage on. */
  eventsPerSecond: number;
  endToEndSeconds: number;
  /** Events / (last POST answered - first POST): what the gateway accepted. */
  ingestPerSecond: number;
  rawPublishPerSecond: number;
  ratioToRawPublish: number;
  naivePerSecond: number;
  naiveEvents: number;
  latency: {
    rate: number;
    seconds: number;
    sent: number;
    sentPerSecond: number;
    probes: number;
    lost: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    /** By second of the phase, the median and slowest latency of the probes sent in it. */
    bySecond: SecondFigures[];
    /** Each probe's latency split at the server's timestamps of its event and of its derived membership. */
    byStage: LatencyByStage;
    /** CPU per component over the phase (sending and waiting for the last probes), in cores busy. */
    cpuCores: CpuSeconds;
    /** Derived messages published during the phase (one per derivation transaction with output for the collection). */
    derivedMessages: Record<DerivedCollection, number>;
  };
  p50LatencyMs: number;
  p99LatencyMs: number;
  /** CPU seconds over the throughput phase (first POST to caught up), per component. */
  cpuSeconds: CpuSeconds;
  /** Peak RSS per stage over the whole run, MiB: its VmHWM, or more where a throughput-phase sample read more. */
  rssMb: Record<StageName, number>;
  /** Per stage, the largest RSS sampled (each second) in each quarter of the throughput phase, MiB: bounded memory stops growing. */
  rssMbByQuarter: Record<StageName, number[]>;
  peakRssMb: number;
  mismatches: number;
  exactness: ExactnessResult;
  targets: Target[];
}

/** CPU per component: the stages, the shared nats-server (null when not a local process), every Postgres process, the bench itself. */
export type CpuSeconds = Record<StageName, number> & { natsServer: number | null; postgres: number; bench: number };

/** CPU seconds over a phase as cores busy on average. */
export function coresBusy(cpu: CpuSeconds, seconds: number): CpuSeconds {
  const per = (value: number) => value / seconds;
  return { ingest: per(cpu.ingest), derive: per(cpu.derive), project: per(cpu.project), natsServer: cpu.natsServer === null ? null : per(cpu.natsServer), postgres: per(cpu.postgres), bench: per(cpu.bench) };
}

export interface Target {
  metric: string;
  target: string;
  met: boolean;
}

export const targetValues = Object.freeze({
  eventsPerSecond: 25_000,
  ratioToRawPublish: 0.4,
  p99LatencyMs: 250,
  latencyRate: 5_000,
  /** "Memory bounded": a stage that holds a run's state would grow past this with a million events. */
  peakRssMb: 1024,
});

export function evaluateTargets(result: Omit<BenchResult, 'targets'>): Target[] {
  return [
    { metric: 'eventsPerSecond', target: `>= ${targetValues.eventsPerSecond}`, met: result.eventsPerSecond >= targetValues.eventsPerSecond },
    { metric: 'ratioToRawPublish', target: `>= ${targetValues.ratioToRawPublish}`, met: result.ratioToRawPublish >= targetValues.ratioToRawPublish },
    {
      metric: 'p99LatencyMs',
      target: `<= ${targetValues.p99LatencyMs} at ${targetValues.latencyRate}/s`,
      met: result.latency.rate >= targetValues.latencyRate && result.latency.lost === 0 && result.p99LatencyMs <= targetValues.p99LatencyMs,
    },
    { metric: 'mismatches', target: '0', met: result.mismatches === 0 },
    { metric: 'peakRssMb', target: `<= ${targetValues.peakRssMb} per stage`, met: result.peakRssMb <= targetValues.peakRssMb },
  ];
}

const cpuComponents: readonly [keyof CpuSeconds, string][] = [
  ['ingest', 'ingest'],
  ['derive', 'derive'],
  ['project', 'project'],
  ['natsServer', 'nats-server (shared: whole process)'],
  ['postgres', 'postgres (all its processes)'],
  ['bench', 'bench (load generator)'],
];

const integer = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const yes = (met: boolean) => (met ? 'yes' : '**no**');

/** Each hop's p50 / p99, and in parentheses its mean over the probes at or above the p99 of the whole. */
export function describeLatencyByStage(stages: LatencyByStage): string {
  const hop = (label: string, { p50Ms, p99Ms, slowestMeanMs }: LatencyByStage['gateway']) => `${label} ${fixed(p50Ms, 0)} / ${fixed(p99Ms, 0)} ms (${fixed(slowestMeanMs, 0)})`;
  return [hop('gateway to events stream', stages.gateway), hop('derive', stages.derive), hop('project to visible', stages.project)].join(', ');
}

export function describeBySecond(seconds: readonly SecondFigures[]): string {
  return `${seconds.map((s) => `${fixed(s.p50Ms, 0)}/${fixed(s.maxMs, 0)}`).join(', ')} ms`;
}

function describeDerivedMessages(counts: Record<DerivedCollection, number>): string {
  return Object.entries(counts).map(([collection, messages]) => `${collection} ${integer(messages)}`).join(', ');
}

export function renderMarkdown(result: BenchResult): string {
  const met = (metric: string) => yes(result.targets.find((t) => t.metric === metric)?.met ?? false);
  const { latency, cpuSeconds: cpu, exactness } = result;
  const latencyNote = `${integer(latency.probes)} probes at ${integer(latency.rate)} events/s for ${fixed(latency.seconds, 0)} s${latency.lost > 0 ? `, ${latency.lost} never seen` : ''}`;
  const rows: [string, string, string, string][] = [
    ['end-to-end throughput', `${integer(result.eventsPerSecond)} events/s (${integer(result.events)} events in ${fixed(result.endToEndSeconds, 1)} s)`, `>= ${integer(targetValues.eventsPerSecond)} events/s`, met('eventsPerSecond')],
    ['ingest accepted', `${integer(result.ingestPerSecond)} events/s`, '', ''],
    ['raw JetStream publish (ceiling)', `${integer(result.rawPublishPerSecond)} events/s`, '', ''],
    ['ratio to raw publish', fixed(result.ratioToRawPublish, 2), `>= ${targetValues.ratioToRawPublish}`, met('ratioToRawPublish')],
    ['naive one-by-one upserts', `${integer(result.naivePerSecond)} events/s (${integer(result.naiveEvents)} events)`, '', ''],
    ['latency p50, publish to visible', `${fixed(result.p50LatencyMs, 0)} ms (${latencyNote})`, '', ''],
    ['latency p99', `${fixed(result.p99LatencyMs, 0)} ms (max ${fixed(latency.maxMs, 0)} ms)`, `<= ${targetValues.p99LatencyMs} ms at ${integer(targetValues.latencyRate)}/s`, met('p99LatencyMs')],
    ['latency by stage, p50 / p99 (slowest 1%)', describeLatencyByStage(latency.byStage), '', ''],
    ['latency p50 / max by second of the phase', describeBySecond(latency.bySecond), '', ''],
    [
      'mismatches vs reference model',
      `${integer(result.mismatches)} (${exactness.collections.map((c) => `${c.collection.slice('segment/'.length)} ${integer(c.actual)}`).join(', ')} rows; ${exactness.mode === 'full' ? 'every row' : `users sampled 1 in ${exactness.sampleEvery}`})`,
      '0',
      met('mismatches'),
    ],
    ...cpuComponents.map(([component, label]): [string, string, string, string] => {
      const seconds = cpu[component];
      const cores = latency.cpuCores[component];
      if (seconds === null || cores === null) return [`CPU ${label}`, 'n/a (not a local process)', '', ''];
      return [`CPU ${label}`, `${fixed(seconds, 1)} s = ${integer((seconds * 1e6) / result.events)} µs/event; ${fixed(cores, 2)} cores at ${integer(latency.rate)}/s`, '', ''];
    }),
    ['derived messages, throughput phase', describeDerivedMessages(result.derivedMessages), '', ''],
    ['derived messages, latency phase', describeDerivedMessages(latency.derivedMessages), '', ''],
    ['Postgres checkpoints, throughput phase', describeCheckpointActivity(result.postgresCheckpoints.throughput), '', ''],
    ['Postgres checkpoints, latency phase', describeCheckpointActivity(result.postgresCheckpoints.latency), '', ''],
    [
      'RSS by quarter of the throughput phase',
      Object.entries(result.rssMbByQuarter).map(([stage, quarters]) => `${stage} ${quarters.map(integer).join(' / ')}`).join('; ') + ' MB',
      '',
      '',
    ],
    ['peak RSS ingest / derive / project', `${integer(result.rssMb.ingest)} / ${integer(result.rssMb.derive)} / ${integer(result.rssMb.project)} MB`, `<= ${integer(targetValues.peakRssMb)} MB each`, met('peakRssMb')],
  ];
  return [
    `segment bench: ${integer(result.events)} events, seed ${result.seed}, namespace ${result.namespace}, nats-server ${result.natsServerVersion}, ${describePostgresSettings(result.postgresSettings)}; CPU over the throughput phase, and in cores busy during the latency phase`,
    '',
    '| metric | value | target | met? |',
    '|---|---|---|---|',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

/** The JSON document of `--json FILE` (non-finite numbers become null). */
export function toJson(result: BenchResult): string {
  return `${JSON.stringify(result, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`;
}
