// Planner statistics for the namespace's tables. Postgres gathers them in autovacuum, which a
// server may run with switched off (this machine's does): a 4.6M-row memberships table never
// analyzed had the planner expect millions of matches for 50 users and scan all 2.1 GB (3.2 s a
// query, measured) where the index answers in 1 ms. So the projectors analyze their tables
// themselves when autovacuum would have: after changes to 10% of the rows (and 50 more).
import { sql } from 'kysely';
import type { SegmentDatabase } from './database.ts';

/** Analyzes the namespace's tables with more changes since their last analyze than autovacuum allows; returns their names. */
export async function analyzeStaleTables(database: SegmentDatabase): Promise<string[]> {
  const { rows } = await sql<{ relname: string }>`
    SELECT relname FROM pg_stat_user_tables
    WHERE schemaname = ${database.schema} AND n_mod_since_analyze > 50 + 0.1 * greatest(n_live_tup, 0)
    ORDER BY relname`.execute(database.db);
  for (const { relname } of rows) await sql`ANALYZE ${sql.id(database.schema, relname)}`.execute(database.db);
  return rows.map((r) => r.relname);
}
