import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { schemaDocuments, schemaOf } from '@segment/model';
import { compileReduceTree, reductionOf } from '@segment/reduce';
import { FencedError, keyId, type ProjectionPosition, type ProjectionStore } from '@segment/runtime';
import type { BulkSession, SegmentDatabase } from './database.ts';
import type { Projection } from './projections.ts';

/**
 * A projection's table in Postgres. Each commit is one transaction: load the stored documents of
 * the batch's keys, reduce the batch into them with the schema's reduction, stage every row in
 * bulk, then move the lease (fencing), merge the rows and store the position in one statement.
 *
 * An instance takes the projection over once, at its first `acquire`; later calls only re-read the
 * position while it still holds the lease, and are fenced otherwise. A projector re-reads after a
 * failed transaction: a replaced one doing so used to take the projection back from its
 * replacement, which was then fenced in its place.
 */
export class PostgresProjectionStore<D> implements ProjectionStore<D> {
  readonly #database: SegmentDatabase;
  readonly #projection: Projection<D>;
  readonly #name: string;
  readonly #owner = randomUUID();
  readonly #reduce: (left: D | undefined, right: D) => D;
  /** A last-write-wins collection (toggles) needs no stored document to reduce into. */
  readonly #replaces: boolean;
  #acquired = false;
  /** The position last read or committed here: an empty commit at it only confirms the lease. */
  #position: ProjectionPosition | undefined;
  readonly #tables: { target: string; leases: string; checkpoints: string };
  readonly #stageTable: string;
  /** The staged rows merged into the table: a CTE of the commit's statement, run only while `lease` (its fence) holds. */
  readonly #mergeStaged: string;

  constructor(database: SegmentDatabase, projection: Projection<D>, name: string) {
    this.#database = database;
    this.#projection = projection;
    this.#name = name;
    this.#reduce = reductionOf(projection.schema) as unknown as (left: D | undefined, right: D) => D;
    this.#replaces = compileReduceTree(schemaOf(projection.schema), { documents: schemaDocuments }).strategy === 'lastWriteWins';
    const schema = quoteIdent(database.schema);
    this.#tables = {
      target: `${schema}.${quoteIdent(projection.table)}`,
      leases: `${schema}.segment_projector_leases`,
      checkpoints: `${schema}.segment_projector_checkpoints`,
    };
    this.#stageTable = quoteIdent(`stage_${projection.table}`);
    const { columns, keyColumns } = projection;
    const names = columns.map((c) => quoteIdent(c.name)).join(', ');
    const updates = columns
      .filter((c) => !keyColumns.some((k) => k.name === c.name))
      .map((c) => `${quoteIdent(c.name)} = excluded.${quoteIdent(c.name)}`)
      .join(', ');
    this.#mergeStaged =
      `INSERT INTO ${this.#tables.target} (${names}) SELECT ${names} FROM ${this.#stageTable} WHERE EXISTS (SELECT FROM lease) ` +
      `ON CONFLICT (${keyColumns.map((k) => quoteIdent(k.name)).join(', ')}) DO UPDATE SET ${updates}`;
  }

  /** The projector's name, e.g. `project_memberships`; checkpoints and lease are stored under it. */
  get name(): string {
    return this.#name;
  }

  async acquire(): Promise<ProjectionPosition> {
    const position = await this.#database.db.transaction().execute(async (trx) => {
      let streamSeq: string;
      if (this.#acquired) {
        const lease = await trx.selectFrom('segment_projector_leases').select(['owner', 'stream_seq']).where('projector', '=', this.#name).forUpdate().executeTakeFirst();
        if (lease?.owner !== this.#owner) throw new FencedError(`projector ${this.#name} was taken over by another instance`);
        streamSeq = lease.stream_seq;
      } else {
        // Taking over bumps the epoch and changes the owner: the previous holder's next commit fails.
        const lease = await trx
          .insertInto('segment_projector_leases')
          .values({ projector: this.#name, owner: this.#owner, epoch: 1, stream_seq: 0 })
          .onConflict((oc) => oc.column('projector').doUpdateSet({ owner: this.#owner, epoch: sql`segment_projector_leases.epoch + 1`, updated_at: sql`now()` }))
          .returning(['stream_seq'])
          .executeTakeFirstOrThrow();
        streamSeq = lease.stream_seq;
      }
      const rows = await trx.selectFrom('segment_projector_checkpoints').select(['partition', 'source_seq']).where('projector', '=', this.#name).execute();
      return { streamSeq: Number(streamSeq), checkpoints: new Map(rows.map((r) => [r.partition, Number(r.source_seq)])) };
    });
    this.#acquired = true;
    this.#position = position;
    return position;
  }

  async commit(documents: readonly D[], position: ProjectionPosition): Promise<void> {
    // An idle projector confirming its lease: nothing to write.
    if (documents.length === 0 && this.#position && samePosition(position, this.#position)) {
      const lease = await this.#database.db.selectFrom('segment_projector_leases').select('owner').where('projector', '=', this.#name).executeTakeFirst();
      if (lease?.owner !== this.#owner) throw new FencedError(`projector ${this.#name} was taken over by another instance`);
      return;
    }
    // Five round trips (four when no stored document is needed): BEGIN with the session settings,
    // load the stored documents, COPY the reduced rows into the staging table, one statement that
    // moves the lease (only while this instance holds it: that is the fence), merges the rows and
    // stores the checkpoints, then COMMIT.
    // The checkpoint commits with the rows: if Postgres loses this transaction in a crash, it
    // loses both, and the projector replays it from NATS. So the commit need not wait for the WAL.
    await this.#database.bulkTransaction(
      async (session) => {
        if (documents.length > 0) await this.#stage(session, documents);
        const partitions = [...position.checkpoints.keys()];
        const [result] = await session.query<{ held: number }>(
          `WITH lease AS (
             UPDATE ${this.#tables.leases} SET stream_seq = $3, updated_at = now() WHERE projector = $1 AND owner = $2 RETURNING 1
           )${documents.length > 0 ? `, merged AS (${this.#mergeStaged})` : ''}, checkpoints AS (
             INSERT INTO ${this.#tables.checkpoints} (projector, partition, source_seq)
             SELECT $1, p, s FROM unnest($4::int4[], $5::int8[]) AS t(p, s) WHERE EXISTS (SELECT FROM lease)
             ON CONFLICT (projector, partition) DO UPDATE SET source_seq = excluded.source_seq
           )
           SELECT count(*)::int AS held FROM lease`,
          [this.#name, this.#owner, position.streamSeq, partitions, partitions.map((p) => position.checkpoints.get(p))],
        );
        if (result?.held !== 1) throw new FencedError(`projector ${this.#name} was taken over by another instance`);
      },
      `SET LOCAL synchronous_commit = off; CREATE TEMP TABLE IF NOT EXISTS ${this.#stageTable} (LIKE ${this.#tables.target}) ON COMMIT DELETE ROWS`,
    );
    this.#position = position;
  }

  /**
   * Loads the stored documents of the batch's keys, reduces the batch into them, and writes the
   * rows into the staging table: COPY where the server has it (~1.6× the rows/s of an `unnest`
   * insert, measured here), `unnest` otherwise. The commit's statement merges them into the table.
   */
  async #stage(session: BulkSession, documents: readonly D[]): Promise<void> {
    const { columns, keyOf, rowOf } = this.#projection;
    const stored = this.#replaces ? new Map<string, D>() : await this.#load(session, documents);
    const rows = documents.map((document) => rowOf(this.#reduce(stored.get(keyId(keyOf(document))), document)));
    if (session.copyRows) await session.copyRows(this.#stageTable, rows);
    else {
      const arrays = columns.map((column, i) => `$${i + 1}::${column.type}[]`).join(', ');
      await session.query(`INSERT INTO ${this.#stageTable} SELECT * FROM unnest(${arrays})`, columns.map((_, i) => rows.map((row) => row[i])));
    }
  }

  /** The stored documents of the batch's keys, by key id. */
  async #load(session: BulkSession, documents: readonly D[]): Promise<Map<string, D>> {
    const { keyColumns, keyOf } = this.#projection;
    const keys = documents.map(keyOf);
    const names = keyColumns.map((k) => quoteIdent(k.name)).join(', ');
    const arrays = keyColumns.map((column, i) => `$${i + 1}::${column.type}[]`).join(', ');
    const rows = await session.query<{ document: D }>(
      `SELECT t.document FROM ${this.#tables.target} t JOIN unnest(${arrays}) AS k(${names}) USING (${names})`,
      keyColumns.map((_, i) => keys.map((key) => key[i])),
    );
    return new Map(rows.map(({ document }) => [keyId(keyOf(document)), document]));
  }
}

function samePosition(a: ProjectionPosition, b: ProjectionPosition): boolean {
  return a.streamSeq === b.streamSeq && a.checkpoints.size === b.checkpoints.size && [...a.checkpoints].every(([partition, seq]) => b.checkpoints.get(partition) === seq);
}

/** A double-quoted SQL identifier. */
function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Empties a namespace's projected tables and forgets every projector's position, so projectors
 * back-fill from the start of the derived streams. A projector still running is fenced: its lease is gone.
 */
export async function resetProjections(database: SegmentDatabase): Promise<void> {
  await database.db.transaction().execute(async (trx) => {
    const s = sql.id(database.schema);
    await sql`TRUNCATE ${s}.segment_memberships, ${s}.segment_toggles, ${s}.segment_projector_checkpoints, ${s}.segment_projector_leases`.execute(trx);
  });
}
