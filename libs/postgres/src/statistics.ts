// Planner statistics for the namespace's tables. Postgres gathers them in autovacuum, which a
// server may run with switched off (this machine's does): a 4.6M-row memberships table never
// analyzed had the planner expect millions of matches for 50 users and scan all 2.1 GB (3.2 s a
// query, measured) where the index answers in 1 ms. So the projectors analyze their tables
// themselves when autovacuum would have: after changes to 10% of the rows (and 50 more).
// They sample 3,000 rows (statistics target 10) instead of the default 30,000: the plans they need
// are key lookups, which row counts decide, and a full sample read most of a 600,000-row
// memberships table (220–290 ms alone, 17 ms with the small sample; one ran ~1 s beside a
// bench's projectors at 5,000 events/s, in a run whose projection p99 was 284 ms).
import { sql } from 'kysely';
import type { SegmentDatabase } from './database.ts';

/** Per column, ANALYZE samples 300 times this many rows. */
const analyzeStatisticsTarget = 10;

/** Analyzes the namespace's tables with more changes since their last analyze than autovacuum allows; returns their names. */
export async function analyzeStaleTables(database: SegmentDatabase): Promise<string[]> {
  const { rows } = await sql<{ relname: string }>`
    SELECT relname FROM pg_stat_user_tables
    WHERE schemaname = ${database.schema} AND n_mod_since_analyze > 50 + 0.1 * greatest(n_live_tup, 0)
    ORDER BY relname`.execute(database.db);
  for (const { relname } of rows) {
    await database.db.transaction().execute(async (trx) => {
      await sql`SET LOCAL default_statistics_target = ${sql.lit(analyzeStatisticsTarget)}`.execute(trx);
      await sql`ANALYZE ${sql.id(database.schema, relname)}`.execute(trx);
    });
  }
  return rows.map((r) => r.relname);
}
