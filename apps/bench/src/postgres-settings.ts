// The Postgres server settings that move the bench's figures: printed with every run, so a result
// says which server it was measured on.
import { sql } from 'kysely';
import type { SegmentDatabase } from '@segment/postgres';

/** Settings read from the server, by name, as `SHOW` prints them (e.g. `128MB`). */
export type PostgresSettings = Record<(typeof settingNames)[number], string>;

const settingNames = ['server_version', 'shared_buffers', 'max_wal_size', 'autovacuum'] as const;

export async function readPostgresSettings(database: SegmentDatabase): Promise<PostgresSettings> {
  const { rows } = await sql<{ name: string; value: string }>`SELECT name, current_setting(name) AS value FROM unnest(${[...settingNames]}::text[]) AS name`.execute(database.db);
  return Object.fromEntries(rows.map(({ name, value }) => [name, value])) as PostgresSettings;
}

export function describePostgresSettings(settings: PostgresSettings): string {
  return `Postgres ${settings.server_version.split(' ')[0]} (shared_buffers ${settings.shared_buffers}, max_wal_size ${settings.max_wal_size}, autovacuum ${settings.autovacuum})`;
}
