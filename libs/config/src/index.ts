// One frozen configuration for every app, read from the environment (and flags layered on top by
// the caller). Libraries take what they need from it; none of them reads process.env itself.

export interface SegmentConfig {
  /** NATS server URLs, comma-separated. */
  readonly natsUrl: string;
  /** Isolates one pipeline's streams, buckets and tables from another's on the same servers. */
  readonly namespace: string;
  /** Postgres connection string. */
  readonly databaseUrl: string;
  /** Stream and bucket replicas: 1 on one server, 3 on a cluster. */
  readonly replicas: number;
  /** This worker replica's ordinal and the number of replicas splitting the partitions. */
  readonly replicaIndex: number;
  readonly replicaCount: number;
  readonly logLevel: string;
  /**
   * How often a derivation partition commits: registers written back, checkpoint, ack. Longer
   * combines more register writes of hot keys and replays more after a crash.
   */
  readonly commitIntervalMs: number;
  /**
   * Per derivation, the size of a worker's register journals (all its partitions together) after
   * which the largest one's registers are written to their KV bucket: more combines more writes
   * and holds more memory; less replays faster after a crash. Unset: the worker's default.
   */
  readonly registerJournalBytes: number | undefined;
  /**
   * Per derivation, the written-back registers a worker keeps in memory (all its partitions
   * together): fewer holds less memory and reads more registers back from KV. Unset: the
   * worker's default.
   */
  readonly registerCacheEntries: number | undefined;
}

export type Environment = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  readonly code = 'SEGMENT_CONFIG_INVALID';
}

function integer<F extends number | undefined>(env: Environment, name: string, fallback: F, min: number): number | F {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

/** Reads the configuration; `overrides` (e.g. from flags) win over the environment. */
export function loadConfig(env: Environment, overrides: Partial<SegmentConfig> = {}): SegmentConfig {
  const config: SegmentConfig = {
    natsUrl: env.SEGMENT_NATS_URL || 'nats://127.0.0.1:4222',
    namespace: env.SEGMENT_NAMESPACE || 'segment',
    databaseUrl: env.SEGMENT_DATABASE_URL || env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    replicas: integer(env, 'SEGMENT_REPLICAS', 1, 1),
    replicaIndex: integer(env, 'SEGMENT_REPLICA_INDEX', 0, 0),
    replicaCount: integer(env, 'SEGMENT_REPLICA_COUNT', 1, 1),
    logLevel: env.SEGMENT_LOG_LEVEL || env.LOG_LEVEL || 'info',
    commitIntervalMs: integer(env, 'SEGMENT_COMMIT_INTERVAL_MS', 1000, 1),
    registerJournalBytes: integer(env, 'SEGMENT_REGISTER_JOURNAL_BYTES', undefined, 1),
    registerCacheEntries: integer(env, 'SEGMENT_REGISTER_CACHE_ENTRIES', undefined, 1),
    ...Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined)),
  };
  if (config.replicaIndex >= config.replicaCount) {
    throw new ConfigError(`SEGMENT_REPLICA_INDEX (${config.replicaIndex}) must be below SEGMENT_REPLICA_COUNT (${config.replicaCount})`);
  }
  return Object.freeze(config);
}
