// Kysely migrations, per namespace schema. Raw SQL: collations, views and grants say more plainly
// in SQL than through a builder. Text keys use COLLATE "C": code point order, the order of every
// other part of Segment (Postgres would otherwise sort by the locale).
import { setTimeout as sleep } from 'node:timers/promises';
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import type { SegmentDatabase } from './database.ts';

export const reportingRole = 'segment_reporting';

function migrationsFor(schema: string): Record<string, Migration> {
  const s = sql.id(schema);
  const role = sql.id(reportingRole);
  return {
    '0001_views': {
      async up(db: Kysely<unknown>) {
        await sql`
          CREATE TABLE ${s}.segment_memberships (
            vendor integer NOT NULL,
            segment_name text COLLATE "C" NOT NULL,
            "user" text COLLATE "C" NOT NULL,
            first text,
            last text NOT NULL,
            member boolean NOT NULL,
            value text,
            first_at timestamptz,
            last_at timestamptz NOT NULL,
            document jsonb NOT NULL,
            PRIMARY KEY (vendor, segment_name, "user")
          ) WITH (fillfactor = 80)`.execute(db);
        // Room on each page (fillfactor 80) lets an update stay on its page without touching the
        // indexes (a HOT update): keys never change, and most writes update an existing membership.
        // "All segments of a user": profiles read through this.
        await sql`CREATE INDEX segment_memberships_by_user ON ${s}.segment_memberships ("user", segment_name, vendor)`.execute(db);
        await sql`
          CREATE TABLE ${s}.segment_toggles (
            event text COLLATE "C" PRIMARY KEY,
            vendor integer NOT NULL,
            segment_name text COLLATE "C" NOT NULL,
            "user" text COLLATE "C" NOT NULL,
            timestamp text NOT NULL,
            timestamp_at timestamptz NOT NULL,
            remove boolean NOT NULL,
            previous_event text COLLATE "C" NOT NULL,
            previous_remove boolean NOT NULL,
            document jsonb NOT NULL
          )`.execute(db);
        await sql`CREATE INDEX segment_toggles_by_time ON ${s}.segment_toggles (timestamp_at DESC)`.execute(db);
        await sql`CREATE INDEX segment_toggles_by_membership ON ${s}.segment_toggles (vendor, segment_name, "user")`.execute(db);
        // A profile's segments are exactly its memberships' details (same reduction per (name, vendor)),
        // so profiles are a view: one write per event fewer, and never out of step with memberships.
        await createProfilesView(db, s);
        await sql`
          CREATE VIEW ${s}.segment_sizes AS
          SELECT vendor, segment_name, count(*) FILTER (WHERE member) AS members, max(last_at) AS last_update
          FROM ${s}.segment_memberships
          GROUP BY vendor, segment_name`.execute(db);
        await sql`
          CREATE TABLE ${s}.segment_projector_checkpoints (
            projector text NOT NULL,
            partition integer NOT NULL,
            source_seq bigint NOT NULL,
            PRIMARY KEY (projector, partition)
          )`.execute(db);
        await sql`
          CREATE TABLE ${s}.segment_projector_leases (
            projector text PRIMARY KEY,
            owner text NOT NULL,
            epoch bigint NOT NULL,
            stream_seq bigint NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now()
          )`.execute(db);
        // Reporting reads everything and can change nothing.
        await sql`
          DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'segment_reporting') THEN
              CREATE ROLE segment_reporting NOLOGIN;
            END IF;
          EXCEPTION WHEN duplicate_object THEN NULL;
          END $$`.execute(db);
        await sql`GRANT USAGE ON SCHEMA ${s} TO ${role}`.execute(db);
        await sql`GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${role}`.execute(db);
        await sql`ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT ON TABLES TO ${role}`.execute(db);
      },
    },
    // A membership's document is exactly its columns, so it is no longer stored twice: the jsonb
    // copy made Postgres's CPU per membership written 1.7× (39.8 against 23.0 µs in a probe here:
    // 1M memberships over 300,000 keys, loaded and upserted as the projector does) and the table
    // 1.8× the size. Readers keep `segment_memberships` with its `document`, now a view that
    // builds it; the projector writes `segment_membership_rows`.
    '0002_membership_documents_from_columns': {
      async up(db: Kysely<unknown>) {
        await sql`DROP VIEW ${s}.segment_profiles`.execute(db);
        await sql`ALTER TABLE ${s}.segment_memberships RENAME TO segment_membership_rows`.execute(db);
        await sql`ALTER INDEX ${s}.segment_memberships_by_user RENAME TO segment_membership_rows_by_user`.execute(db);
        await sql`ALTER TABLE ${s}.segment_membership_rows DROP COLUMN document`.execute(db);
        // jsonb_strip_nulls leaves out `first` and `value` where absent: no other field may be null.
        await sql`
          CREATE VIEW ${s}.segment_memberships AS
          SELECT vendor, segment_name, "user", first, last, member, value, first_at, last_at,
                 jsonb_strip_nulls(jsonb_build_object(
                   'segment', jsonb_build_object('vendor', vendor, 'name', segment_name),
                   'user', "user", 'first', first, 'last', last, 'member', member, 'value', value)) AS document
          FROM ${s}.segment_membership_rows`.execute(db);
        await createProfilesView(db, s);
        await sql`GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${role}`.execute(db);
      },
    },
  };
}

/** A profile is its user's memberships, aggregated; 0002 recreates it over the new memberships view. */
async function createProfilesView(db: Kysely<unknown>, s: ReturnType<typeof sql.id>): Promise<void> {
  await sql`
    CREATE VIEW ${s}.segment_profiles AS
    SELECT "user",
           jsonb_build_object('user', "user", 'segments', jsonb_agg(document - 'user' ORDER BY segment_name, vendor)) AS document
    FROM ${s}.segment_memberships
    GROUP BY "user"`.execute(db);
}

class StaticProvider implements MigrationProvider {
  readonly #migrations: Record<string, Migration>;
  constructor(migrations: Record<string, Migration>) {
    this.#migrations = migrations;
  }
  async getMigrations() {
    return this.#migrations;
  }
}

/** Creates the namespace's schema and brings it to the latest migration; safe to run concurrently. */
export async function migrate(database: SegmentDatabase): Promise<MigrationResultSet> {
  const root = database.db.withoutPlugins() as unknown as Kysely<unknown>;
  await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(database.schema)}`.execute(root);
  const migrator = new Migrator({
    db: root,
    provider: new StaticProvider(migrationsFor(database.schema)),
    migrationTableSchema: database.schema,
  });
  for (let attempt = 1; ; attempt++) {
    const result = await migrator.migrateToLatest();
    if (!result.error) return result;
    if (attempt < 5 && isAnotherSchemaDropped(result.error, database.schema)) {
      await sleep(50 * attempt);
      continue;
    }
    throw new Error(`migrating schema ${database.schema} failed: ${result.error instanceof Error ? result.error.message : String(result.error)}`, { cause: result.error });
  }
}

/**
 * Kysely's migrator looks for its tables by listing the tables of every schema (with
 * `pg_get_serial_sequence` on each), which fails when another namespace's schema is dropped during
 * the listing (seen with two test runs at once). Nothing of ours was changed then: try again.
 */
function isAnotherSchemaDropped(error: unknown, schema: string): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return (code === '3F000' || code === '42P01') && !String(message).includes(`"${schema}"`);
}

/** Drops a namespace's schema and everything in it (tests and benchmarks). */
export async function dropSchema(database: SegmentDatabase): Promise<void> {
  const root = database.db.withoutPlugins() as unknown as Kysely<unknown>;
  await sql`DROP SCHEMA IF EXISTS ${sql.id(database.schema)} CASCADE`.execute(root);
}
