import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { PoolLike } from './pglite-pool.ts';
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

/** A transaction on one connection, for bulk writes that a query builder cannot express (COPY). */
export interface BulkSession {
  /** With parameters, the statement is prepared once per connection (planning a projector's merge cost ~0.4 ms a time). */
  query<R = Record<string, unknown>>(text: string, parameters?: readonly unknown[]): Promise<R[]>;
  /** Streams rows into a table with COPY, where the backend has it (a Postgres server; not PGlite). */
  readonly copyRows: ((table: string, rows: readonly (readonly unknown[])[]) => Promise<void>) | undefined;
}

export interface SegmentDatabase {
  /** Queries against the namespace's schema. */
  readonly db: Kysely<Database>;
  readonly schema: string;
  /**
   * Runs `work` in one transaction on one connection; commits when it resolves, rolls back when it
   * throws. `setup` (statements without parameters, e.g. `SET LOCAL ...`) goes with BEGIN in one
   * round trip: under load each round trip waits for a turn on the CPU, which made them the larger
   * part of a small projector transaction.
   */
  bulkTransaction<T>(work: (session: BulkSession) => Promise<T>, setup?: string): Promise<T>;
  destroy(): Promise<void>;
}

interface PooledClient {
  query(text: string | pg.QueryConfig, parameters?: readonly unknown[]): Promise<{ rows: unknown[] }>;
  release(): void;
}

/** A prepared statement's name: the same on every connection for the same text (pg prepares it on each at first use). */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) statementNames.set(text, (name = `segment_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`));
  return name;
}

/** COPY's text format: tab-separated, `\N` for null, backslash escapes. */
function copyField(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  const text = typeof value === 'string' ? value : String(value);
  return /[\\\t\n\r]/.test(text) ? text.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r') : text;
}

async function copyInto(client: pg.PoolClient, table: string, rows: readonly (readonly unknown[])[]): Promise<void> {
  const text = rows.map((row) => row.map(copyField).join('\t')).join('\n') + '\n';
  await pipeline(Readable.from([text]), client.query(copyFrom(`COPY ${table} FROM STDIN`)));
}

/** Schemas are namespaces: lower-case identifiers, safe to embed. */
export const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;

export const pglitePrefix = 'pglite:';

export function openDatabase(options: DatabaseOptions): SegmentDatabase {
  if (!schemaPattern.test(options.schema)) throw new Error(`schema "${options.schema}" must match ${schemaPattern}`);
  const embedded = options.connectionString.startsWith(pglitePrefix);
  let pglite: Promise<PoolLike> | undefined;
  const pool = embedded
    ? () => (pglite ??= import('./pglite-pool.ts').then((m) => m.openPglitePool(options.connectionString.slice(pglitePrefix.length))))
    : new pg.Pool({
        connectionString: options.connectionString,
        max: options.maxConnections ?? 4,
        application_name: options.applicationName ?? 'segment',
      });
  const root = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pool as pg.Pool }) });
  return {
    db: root.withSchema(options.schema),
    schema: options.schema,
    async bulkTransaction(work, setup) {
      const client: PooledClient = typeof pool === 'function' ? await (await pool()).connect() : await pool.connect();
      const session: BulkSession = {
        query: async (text, parameters) =>
          (await (parameters && !embedded ? client.query({ name: statementName(text), text, values: [...parameters] }) : client.query(text, parameters ? [...parameters] : undefined))).rows as never,
        copyRows: embedded ? undefined : (table, rows) => copyInto(client as pg.PoolClient, table, rows),
      };
      try {
        await client.query(setup ? `BEGIN; ${setup}` : 'BEGIN');
        const result = await work(session);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    destroy: () => root.destroy(),
  };
}
