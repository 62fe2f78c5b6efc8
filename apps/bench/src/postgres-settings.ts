// The Postgres server settings that move the bench's figures, printed with every run so a result
// says which server it was measured on; and what its checkpointer did during each phase.
import { sql } from 'kysely';
import type { SegmentDatabase } from '@segment/postgres';

/** Settings read from the server, by name, as `SHOW` prints them (e.g. `128MB`). */
export type PostgresSettings = Record<(typeof settingNames)[number], string>;

const settingNames = ['server_version', 'shared_buffers', 'max_wal_size', 'autovacuum', 'server_version_num'] as const;

export async function readPostgresSettings(database: SegmentDatabase): Promise<PostgresSettings> {
  const { rows } = await sql<{ name: string; value: string }>`SELECT name, current_setting(name) AS value FROM unnest(${[...settingNames]}::text[]) AS name`.execute(database.db);
  return Object.fromEntries(rows.map(({ name, value }) => [name, value])) as PostgresSettings;
}

export function describePostgresSettings(settings: PostgresSettings): string {
  return `Postgres ${settings.server_version.split(' ')[0]} (shared_buffers ${settings.shared_buffers}, max_wal_size ${settings.max_wal_size}, autovacuum ${settings.autovacuum})`;
}

/**
 * What the server's checkpointer did (counters for the whole server, other databases included):
 * checkpoints started, the time finished ones spent writing and syncing, and the buffers backends
 * had to write themselves for want of clean ones (not counted from Postgres 17 on: null).
 * Checkpoint syncs of up to 1.2 s have come at moments when every stage of the pipeline was slow.
 */
export interface CheckpointActivity {
  checkpoints: number;
  writeSeconds: number;
  syncSeconds: number;
  buffersWrittenByBackends: number | null;
}

export async function readCheckpointActivity(database: SegmentDatabase, settings: PostgresSettings): Promise<CheckpointActivity> {
  // Postgres 17 moved the checkpointer's counters to a view of its own.
  const query =
    Number(settings.server_version_num) >= 170000
      ? sql<CheckpointActivity>`SELECT num_timed + num_requested AS checkpoints, write_time / 1000 AS "writeSeconds", sync_time / 1000 AS "syncSeconds", NULL AS "buffersWrittenByBackends" FROM pg_stat_checkpointer`
      : sql<CheckpointActivity>`SELECT checkpoints_timed + checkpoints_req AS checkpoints, checkpoint_write_time / 1000 AS "writeSeconds", checkpoint_sync_time / 1000 AS "syncSeconds", buffers_backend AS "buffersWrittenByBackends" FROM pg_stat_bgwriter`;
  const { rows } = await query.execute(database.db);
  const row = rows[0]!;
  const backends = row.buffersWrittenByBackends;
  return { checkpoints: Number(row.checkpoints), writeSeconds: Number(row.writeSeconds), syncSeconds: Number(row.syncSeconds), buffersWrittenByBackends: backends === null ? null : Number(backends) };
}

export function checkpointActivityBetween(before: CheckpointActivity, after: CheckpointActivity): CheckpointActivity {
  const backends = before.buffersWrittenByBackends === null || after.buffersWrittenByBackends === null ? null : after.buffersWrittenByBackends - before.buffersWrittenByBackends;
  return { checkpoints: after.checkpoints - before.checkpoints, writeSeconds: after.writeSeconds - before.writeSeconds, syncSeconds: after.syncSeconds - before.syncSeconds, buffersWrittenByBackends: backends };
}

export function describeCheckpointActivity(activity: CheckpointActivity): string {
  const backends = activity.buffersWrittenByBackends === null ? '' : `, ${activity.buffersWrittenByBackends.toLocaleString('en-US')} buffers written by backends`;
  return `${activity.checkpoints} checkpoint${activity.checkpoints === 1 ? '' : 's'} started (writing ${activity.writeSeconds.toFixed(1)} s, syncing ${activity.syncSeconds.toFixed(1)} s)${backends}`;
}
