// Provisioning: the streams and KV buckets of one namespace, created or reconciled idempotently.
//
// nats-server silently drops settings it does not know: 2.9.10 answers a create that asks for
// `allow_msg_ttl` and `subject_delete_marker_ttl` with success and a config that lacks both. And a
// standalone 2.9.10 refuses to create an R3 stream but accepts an update to R3, then reports
// `num_replicas: 3` while keeping one copy. So nothing here trusts a request: every item is read
// back after a create or update and compared with what was asked for.
import { JetStreamApiError, jetstreamManager, type JetStreamManager, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@segment/telemetry';
import { derivedCollections, type Names } from './names.ts';

export interface ProvisionConfig {
  /** Copies of every stream and bucket; more than 1 needs a JetStream cluster. */
  replicas: number;
  /** How long a `Nats-Msg-Id` is remembered, so a re-published event is stored once. */
  duplicateWindowMs: number;
  /** The largest message a stream accepts (derived messages carry batches of documents). */
  maxMessageBytes: number;
  storage: 'file' | 'memory';
}

export const defaultProvisionConfig: Readonly<ProvisionConfig> = Object.freeze({
  replicas: 1,
  // 10 minutes: a publisher that retries, or restarts and re-sends, within that time is de-duplicated by event id.
  duplicateWindowMs: 10 * 60 * 1000,
  // 1 MiB: the default max_payload of nats-server, so a message the server accepts fits a stream.
  maxMessageBytes: 1024 * 1024,
  storage: 'file',
});

export type ProvisionAction = 'created' | 'updated' | 'unchanged' | 'kept';

export interface ProvisionItem {
  readonly kind: 'stream' | 'bucket';
  /** The stream name, or for a bucket its KV name (its stream is `KV_<name>`). */
  readonly name: string;
  readonly action: ProvisionAction;
  /** For `updated`: what changed, e.g. `duplicate_window 120s -> 600s`; for `kept`, what was not. */
  readonly changes?: string[];
}

export interface ProvisionOptions {
  /**
   * What becomes of a stream or bucket that exists with other mutable settings than the config's:
   * `reconcile` (the default, `segment setup`) updates it; `keep` leaves it as it was set and
   * reports it `kept`. A stage creates what is missing with `keep`, so that it does not undo what
   * `segment setup` set (it used to put a shortened duplicate window back to the default).
   */
  existing?: 'reconcile' | 'keep';
}

export type ProvisionReport = readonly ProvisionItem[];

export type ProvisionErrorCode =
  | 'SEGMENT_PROVISION_INVALID_CONFIG'
  | 'SEGMENT_PROVISION_CONFLICT'
  | 'SEGMENT_PROVISION_NOT_APPLIED'
  | 'SEGMENT_PROVISION_SERVER';

/** Errors with a stable `code`, and a message that says what differs and what to do about it. */
export class ProvisionError extends Error {
  readonly code: ProvisionErrorCode;
  constructor(code: ProvisionErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ProvisionError';
    this.code = code;
  }
}

/** The KV library's prefix for a bucket's stream. */
export const kvStreamPrefix = 'KV_';

/** The stream settings Segment sets; each is compared with what the server reports. */
type Setting = 'subjects' | 'storage' | 'retention' | 'discard' | 'num_replicas' | 'duplicate_window' | 'max_msg_size' | 'max_msgs_per_subject' | 'allow_direct' | 'allow_rollup_hdrs';
type Desired = Pick<StreamConfig, 'name'> & Partial<Pick<StreamConfig, Setting>>;

/** Settings a stream update cannot change: the only way is a new stream. */
const immutable: ReadonlySet<Setting> = new Set<Setting>(['storage', 'retention']);

interface Spec {
  readonly kind: ProvisionItem['kind'];
  readonly name: string;
  readonly config: Desired;
}

const nanosPerMs = 1_000_000;
/** The server keeps max_msg_size in an int32. */
const maxInt32 = 2 ** 31 - 1;

function validate(config: ProvisionConfig): void {
  const problems: string[] = [];
  if (!Number.isInteger(config.replicas) || config.replicas < 1 || config.replicas > 5) {
    problems.push(`replicas must be an integer from 1 to 5, got ${config.replicas}`);
  }
  if (!Number.isInteger(config.duplicateWindowMs) || config.duplicateWindowMs < 1) {
    problems.push(`duplicateWindowMs must be a positive integer, got ${config.duplicateWindowMs}`);
  }
  if (!Number.isInteger(config.maxMessageBytes) || config.maxMessageBytes < 1 || config.maxMessageBytes > maxInt32) {
    problems.push(`maxMessageBytes must be an integer from 1 to ${maxInt32}, got ${config.maxMessageBytes}`);
  }
  if (config.storage !== 'file' && config.storage !== 'memory') {
    problems.push(`storage must be "file" or "memory", got ${JSON.stringify(config.storage)}`);
  }
  if (problems.length > 0) {
    throw new ProvisionError('SEGMENT_PROVISION_INVALID_CONFIG', `invalid provisioning config: ${problems.join('; ')}`);
  }
}

/**
 * Versions a register bucket keeps of a key. Only the newest is ever read, but with history 1
 * every write of a key the bucket already has deletes the old message, somewhere in an older block:
 * nats-server 2.9.10 took 17, then 21, then 30 µs of CPU per rewrite in three rounds of 500,000 over
 * a 3M-key bucket (it grows with the deletes), against 7 µs per new key. With room for older
 * versions a rewrite is an append, 6–10 µs, flat. Journal moves rewrite most of what they write
 * once the bucket is large (3.8M registers in the 10M-event bench, where the server's CPU went
 * from 37 to 33–34 µs per event). The cost: older versions stay on disk, up to this many a key
 * (a register is rewritten at most once per move of its partition's journal), and a direct get of
 * a key with several versions took ~38 µs instead of ~11 (reads are the cache misses, ~10% of the
 * writes at 10M events).
 */
export const registerBucketHistory = 64;

/** What a namespace needs, in the order it is provisioned and reported. */
function provisionSpecs(names: Names, config: ProvisionConfig): Spec[] {
  const stream = (name: string, subjects: string): Spec => ({
    kind: 'stream',
    name,
    config: {
      name,
      subjects: [subjects],
      storage: config.storage,
      retention: 'limits',
      discard: 'old',
      num_replicas: config.replicas,
      duplicate_window: config.duplicateWindowMs * nanosPerMs,
      max_msg_size: config.maxMessageBytes,
    },
  });
  // The layout the KV library gives a bucket (kv.ts `Bucket.init`): one subject per key under
  // `$KV.<bucket>.`, history as the per-subject limit, discard new, rollups for purges.
  const bucket = (name: string, history: number): Spec => ({
    kind: 'bucket',
    name,
    config: {
      name: `${kvStreamPrefix}${name}`,
      subjects: [`$KV.${name}.>`],
      storage: config.storage,
      retention: 'limits',
      discard: 'new',
      num_replicas: config.replicas,
      max_msgs_per_subject: history,
      allow_direct: true,
      allow_rollup_hdrs: true,
    },
  });
  return [
    stream(names.events.stream, names.events.subjects),
    ...derivedCollections.map((collection) => stream(names.derived[collection].stream, names.derived[collection].subjects)),
    stream(names.deadLetters.stream, names.deadLetters.subjects),
    stream(names.registerJournal.stream, names.registerJournal.subjects),
    bucket(names.buckets.toggleRegisters, registerBucketHistory),
    bucket(names.buckets.pushProfileRegisters, registerBucketHistory),
    // Checkpoints: one key per partition, rewritten about once a second; only the current one matters.
    bucket(names.buckets.checkpoints, 1),
  ];
}

function label(spec: Spec): string {
  return spec.kind === 'stream' ? `stream ${spec.name}` : `bucket ${spec.name} (stream ${spec.config.name})`;
}

/** Settings the server keeps in nanoseconds, shown in seconds. */
const nanosSettings: ReadonlySet<string> = new Set(['duplicate_window', 'max_age', 'subject_delete_marker_ttl']);

function formatValue(setting: string, value: unknown): string {
  if (value === undefined) return '(not reported)';
  if (nanosSettings.has(setting) && typeof value === 'number') return `${value / 1e9}s`;
  if (Array.isArray(value)) return `[${value.join(', ')}]`;
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

function sameValue(setting: string, wanted: unknown, actual: unknown): boolean {
  if (setting === 'subjects' && Array.isArray(wanted) && Array.isArray(actual)) {
    // Order carries no meaning for a stream's subjects.
    return wanted.length === actual.length && [...wanted].sort().join('\n') === [...actual].sort().join('\n');
  }
  if (typeof wanted === 'object' && wanted !== null) return JSON.stringify(wanted) === JSON.stringify(actual);
  return wanted === actual;
}

interface Difference {
  readonly setting: Setting;
  readonly wanted: unknown;
  readonly actual: unknown;
}

function compare(requested: Partial<StreamConfig>, actual: StreamConfig): { setting: string; wanted: unknown; actual: unknown }[] {
  const found: { setting: string; wanted: unknown; actual: unknown }[] = [];
  for (const [setting, wanted] of Object.entries(requested)) {
    if (setting === 'name' || wanted === undefined) continue;
    const reported = (actual as unknown as Record<string, unknown>)[setting];
    if (!sameValue(setting, wanted, reported)) found.push({ setting, wanted, actual: reported });
  }
  return found;
}

function differences(spec: Spec, actual: StreamConfig): Difference[] {
  return compare(spec.config, actual) as Difference[];
}

/**
 * What the server did not apply of a requested stream config, one sentence per setting; empty
 * when all took. A standalone server reports replicas it does not keep, so replicas > 1 also
 * needs the stream's cluster info. For anyone creating JetStream things on a server that drops
 * what it does not support.
 */
export function unappliedSettings(requested: Partial<StreamConfig>, info: StreamInfo): string[] {
  const problems = compare(requested, info.config).map(
    (d) => `${d.setting} requested ${formatValue(d.setting, d.wanted)}, server reports ${formatValue(d.setting, d.actual)}`,
  );
  if ((requested.num_replicas ?? 1) > 1 && info.cluster === undefined) {
    problems.push(`num_replicas ${requested.num_replicas} requested, but the server runs without a JetStream cluster and keeps one copy`);
  }
  return problems;
}

function describeChange(d: Difference): string {
  return `${d.setting} ${formatValue(d.setting, d.actual)} -> ${formatValue(d.setting, d.wanted)}`;
}

function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}

const streamNotFound = 10059;
const streamNameInUse = 10058;

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (isApiError(error, streamNotFound)) return undefined;
    throw serverError(`reading ${name}`, error);
  }
}

function serverError(doing: string, error: unknown): ProvisionError {
  if (error instanceof ProvisionError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ProvisionError('SEGMENT_PROVISION_SERVER', `${doing}: ${message}`, { cause: error });
}

/** Reads back what the server holds and fails unless every requested setting took. */
function verify(spec: Spec, info: StreamInfo, doing: 'created' | 'updated'): void {
  const problems = unappliedSettings(spec.config, info);
  if (problems.length > 0) {
    throw new ProvisionError(
      'SEGMENT_PROVISION_NOT_APPLIED',
      `${label(spec)} was ${doing} but the server did not apply every setting (it drops settings it does not support): ${problems.join('; ')}. ` +
        'Use a nats-server that supports them, or change the provisioning config.',
    );
  }
}

type Plan =
  | { readonly spec: Spec; readonly step: 'create' }
  | { readonly spec: Spec; readonly step: 'update'; readonly differences: Difference[] }
  | { readonly spec: Spec; readonly step: 'keep' };

function conflictMessage(spec: Spec, conflicts: Difference[]): string {
  const what = conflicts.map((d) => `${d.setting} is ${formatValue(d.setting, d.actual)} but ${formatValue(d.setting, d.wanted)} is requested`).join(', ');
  const remove = spec.kind === 'stream' ? `nats stream rm ${spec.name}` : `nats kv rm ${spec.name}`;
  return `${label(spec)} exists with settings that cannot be changed in place: ${what} (to delete it, losing its contents: \`${remove}\`)`;
}

function plan(spec: Spec, info: StreamInfo | undefined): { plan: Plan; conflict?: string } {
  if (info === undefined) return { plan: { spec, step: 'create' } };
  const found = differences(spec, info.config);
  const conflicts = found.filter((d) => immutable.has(d.setting));
  if (conflicts.length > 0) return { plan: { spec, step: 'keep' }, conflict: conflictMessage(spec, conflicts) };
  return { plan: found.length === 0 ? { spec, step: 'keep' } : { spec, step: 'update', differences: found } };
}

function conflictError(conflicts: string[]): ProvisionError {
  return new ProvisionError(
    'SEGMENT_PROVISION_CONFLICT',
    `${conflicts.join('; ')}. Nothing was changed. To fix it, delete what conflicts and provision again, or provision another namespace.`,
  );
}

async function update(jsm: JetStreamManager, spec: Spec, found: Difference[]): Promise<ProvisionItem> {
  const changes: Partial<StreamConfig> = {};
  for (const d of found) Object.assign(changes, { [d.setting]: d.wanted });
  let info: StreamInfo;
  try {
    info = await jsm.streams.update(spec.config.name, changes);
  } catch (error) {
    throw serverError(`updating ${label(spec)} (${found.map(describeChange).join(', ')})`, error);
  }
  verify(spec, info, 'updated');
  return { kind: spec.kind, name: spec.name, action: 'updated', changes: found.map(describeChange) };
}

async function create(jsm: JetStreamManager, spec: Spec): Promise<ProvisionItem> {
  let info: StreamInfo;
  try {
    info = await jsm.streams.add({ ...spec.config });
  } catch (error) {
    if (isApiError(error, streamNameInUse)) {
      // Another provisioner created it since we looked: reconcile with what it made.
      const now = await streamInfo(jsm, spec.config.name);
      const next = plan(spec, now);
      if (next.conflict !== undefined) throw conflictError([next.conflict]);
      if (next.plan.step === 'update') return update(jsm, spec, next.plan.differences);
      if (next.plan.step === 'keep') return { kind: spec.kind, name: spec.name, action: 'unchanged' };
    }
    throw serverError(`creating ${label(spec)}`, error);
  }
  verify(spec, info, 'created');
  return { kind: spec.kind, name: spec.name, action: 'created' };
}

/**
 * Creates or reconciles every stream and bucket of a namespace. Every item is planned before any
 * is changed, so a setting that cannot change in place fails the whole run with nothing touched.
 */
export async function provision(nc: NatsConnection, names: Names, config: ProvisionConfig, logger: Logger, options: ProvisionOptions = {}): Promise<ProvisionReport> {
  validate(config);
  if (config.replicas > 1 && !nc.info?.cluster) {
    throw new ProvisionError(
      'SEGMENT_PROVISION_INVALID_CONFIG',
      `replicas ${config.replicas} needs a JetStream cluster, but the server (nats-server ${nc.info?.version ?? '?'}) is standalone; use replicas 1`,
    );
  }
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (error) {
    throw serverError('JetStream is not available', error);
  }

  const specs = provisionSpecs(names, config);
  const plans: Plan[] = [];
  const conflicts: string[] = [];
  for (const spec of specs) {
    const planned = plan(spec, await streamInfo(jsm, spec.config.name));
    plans.push(planned.plan);
    if (planned.conflict !== undefined) conflicts.push(planned.conflict);
  }
  if (conflicts.length > 0) throw conflictError(conflicts);

  const report: ProvisionItem[] = [];
  for (const planned of plans) {
    const item =
      planned.step === 'create'
        ? await create(jsm, planned.spec)
        : planned.step === 'update'
          ? options.existing === 'keep'
            ? { kind: planned.spec.kind, name: planned.spec.name, action: 'kept' as const, changes: planned.differences.map(describeChange) }
            : await update(jsm, planned.spec, planned.differences)
          : { kind: planned.spec.kind, name: planned.spec.name, action: 'unchanged' as const };
    if (item.action === 'unchanged') logger.debug({ kind: item.kind, name: item.name }, 'already provisioned');
    else if (item.action === 'kept') logger.info({ kind: item.kind, name: item.name, notApplied: item.changes }, `${item.kind} kept as it was set (segment setup applies the defaults)`);
    else logger.info({ kind: item.kind, name: item.name, action: item.action, changes: item.changes }, `${item.kind} ${item.action}`);
    report.push(item);
  }
  return report;
}

/** One line per item, e.g. `stream SEGMENT_EVENTS: updated (duplicate_window 120s -> 600s)`. */
export function formatProvisionItem(item: ProvisionItem): string {
  const changes = item.changes && item.changes.length > 0 ? ` (${item.changes.join(', ')})` : '';
  return `${item.kind} ${item.name}: ${item.action}${changes}`;
}

/** Deletes every stream and bucket of a namespace (test and bench cleanup); returns the streams it deleted. */
export async function deprovision(nc: NatsConnection, names: Names): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const deleted: string[] = [];
  for (const spec of provisionSpecs(names, defaultProvisionConfig)) {
    try {
      await jsm.streams.delete(spec.config.name);
      deleted.push(spec.config.name);
    } catch (error) {
      if (!isApiError(error, streamNotFound)) throw serverError(`deleting ${label(spec)}`, error);
    }
  }
  return deleted;
}
