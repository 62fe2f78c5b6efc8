// An embedded Postgres (PGlite, WebAssembly) behind the small part of pg.Pool that Kysely uses, so a
// newcomer's first `segment develop` works without a Postgres server. PGlite is one session, so
// connections are handed out one at a time: a transaction never interleaves with another's statements.
import { PGlite } from '@electric-sql/pglite';

interface QueryResult {
  command: string;
  rowCount: number;
  rows: unknown[];
}

export interface PoolLike {
  connect(): Promise<{ query(sql: string, parameters?: readonly unknown[]): Promise<QueryResult>; release(): void }>;
  end(): Promise<void>;
}

export async function openPglitePool(dataDir: string): Promise<PoolLike> {
  const db = await PGlite.create(dataDir);
  let queue: Promise<void> = Promise.resolve();
  return {
    async connect() {
      let release!: () => void;
      const previous = queue;
      queue = new Promise<void>((resolve) => (release = resolve));
      await previous;
      return {
        async query(sql: string, parameters?: readonly unknown[]) {
          // As on a server, a query without parameters may hold several statements.
          const result = parameters ? await db.query(sql, [...parameters]) : (await db.exec(sql)).at(-1)!;
          return { command: /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? '', rowCount: result.affectedRows ?? 0, rows: result.rows };
        },
        release,
      };
    },
    async end() {
      await queue;
      await db.close();
    },
  };
}
