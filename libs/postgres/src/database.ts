import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './tables.ts';

// int8 (bigint) arrives as string by default; sequences fit a double exactly up to 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export interface DatabaseOptions {
  connectionString: string;
  /** The Postgres schema holding this namespace's tables and views. */
  schema: string;
  maxConnections?: number;
  applicationName?: string;
}

export interface SegmentDatabase {
  /** Queries against the namespace's schema. */
  readonly db: Kysely<Database>;
  readonly pool: pg.Pool;
  readonly schema: string;
  destroy(): Promise<void>;
}

/** Schemas are namespaces: lower-case identifiers, safe to embed. */
export const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;

export function openDatabase(options: DatabaseOptions): SegmentDatabase {
  if (!schemaPattern.test(options.schema)) throw new Error(`schema "${options.schema}" must match ${schemaPattern}`);
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 4,
    application_name: options.applicationName ?? 'segment',
  });
  const root = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db: root.withSchema(options.schema),
    pool,
    schema: options.schema,
    destroy: () => root.destroy(),
  };
}
