import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './tables.ts';

// int8 (bigint) arrives as string by default; sequences fit a double exactly up to 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export interface DatabaseOptions {
  /** A Postgres URL, or `pglite:<directory>` for the embedded database of `segment develop`. */
  connectionString: string;
  /** The Postgres schema holding this namespace's tables and views. */
  schema: string;
  maxConnections?: number;
  applicationName?: string;
}

export interface SegmentDatabase {
  /** Queries against the namespace's schema. */
  readonly db: Kysely<Database>;
  readonly schema: string;
  destroy(): Promise<void>;
}

/** Schemas are namespaces: lower-case identifiers, safe to embed. */
export const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;

export const pglitePrefix = 'pglite:';

export function openDatabase(options: DatabaseOptions): SegmentDatabase {
  if (!schemaPattern.test(options.schema)) throw new Error(`schema "${options.schema}" must match ${schemaPattern}`);
  const pool = options.connectionString.startsWith(pglitePrefix)
    ? async () => (await import('./pglite-pool.ts')).openPglitePool(options.connectionString.slice(pglitePrefix.length))
    : new pg.Pool({
        connectionString: options.connectionString,
        max: options.maxConnections ?? 4,
        application_name: options.applicationName ?? 'segment',
      });
  const root = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pool as pg.Pool }) });
  return {
    db: root.withSchema(options.schema),
    schema: options.schema,
    destroy: () => root.destroy(),
  };
}
