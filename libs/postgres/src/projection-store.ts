import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { schemaDocuments, schemaOf } from '@segment/model';
import { compileReduceTree, reductionOf } from '@segment/reduce';
import { FencedError, keyId, type ProjectionPosition, type ProjectionStore } from '@segment/runtime';
import type { BulkSession, SegmentDatabase } from './database.ts';
import type { Projection } from './projections.ts';

/**
 * From this many rows a commit COPYs them into a staging table, the faster way for large batches
 * (3,000 rows: 119 against 152 ms a transaction; 1,000–2,000 rows about even, measured here).
 * Fewer go into the commit's statement as arrays: no staging round trips and no emptying of the
 * staging table at commit (~0.8 ms), which made a 5-row transaction cost 3.2 ms instead of 1.7.
 */
export const stageRowsAtLeast = 1_000;

/**
 * A projection's table in Postgres. Each commit is one transaction: load the stored documents of
 * the batch's keys, reduce the batch into them with the schema's reduction, then move the lease
 * (fencing), merge the rows and store the position in one statement.
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
  /**
   * The commit's statement: with no rows, with the rows staged, with the rows as arrays. It merges
   * them only while `lease` (its fence) holds.
   */
  readonly #statements: { commitEmpty: string; commitStaged: string; commitInline: string };
  readonly #loadStored: string;

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
    const keyNames = keyColumns.map((k) => quoteIdent(k.name)).join(', ');
    const updates = columns
      .filter((c) => !keyColumns.some((k) => k.name === c.name))
      .map((c) => `${quoteIdent(c.name)} = excluded.${quoteIdent(c.name)}`)
      .join(', ');
    const merge = (source: string) =>
      `, merged AS (INSERT INTO ${this.#tables.target} (${names}) SELECT ${names} FROM ${source} WHERE EXISTS (SELECT FROM lease) ` +
      `ON CONFLICT (${keyNames}) DO UPDATE SET ${updates})`;
    const commit = (merged: string) =>
      `WITH lease AS (
         UPDATE ${this.#tables.leases} SET stream_seq = $3, updated_at = now() WHERE projector = $1 AND owner = $2 RETURNING 1
       )${merged}, checkpoints AS (
         INSERT INTO ${this.#tables.checkpoints} (projector, partition, source_seq)
         SELECT $1, p, s FROM unnest($4::int4[], $5::int8[]) AS t(p, s) WHERE EXISTS (SELECT FROM lease)
         ON CONFLICT (projector, partition) DO UPDATE SET source_seq = excluded.source_seq
       )
       SELECT count(*)::int AS held FROM lease`;
    const inline = `unnest(${arrayParameters(columns, 6)}) AS s(${names})`;
    this.#statements = { commitEmpty: commit(''), commitStaged: commit(merge(this.#stageTable)), commitInline: commit(merge(inline)) };
    this.#loadStored = `SELECT ${projection.documentColumns.map((c) => `t.${quoteIdent(c)}`).join(', ')} FROM ${this.#tables.target} t JOIN unnest(${arrayParameters(keyColumns, 1)}) AS k(${keyNames}) USING (${keyNames})`;
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
    // Four round trips (six when the rows are staged): BEGIN with the session settings, load the
    // stored documents (none for a last-write-wins collection), [create the staging table, COPY
    // the rows into it,] one statement that moves the lease (only while this instance holds it:
    // that is the fence), merges the rows and stores the checkpoints, then COMMIT.
    // The checkpoint commits with the rows: if Postgres loses this transaction in a crash, it
    // loses both, and the projector replays it from NATS. So the commit need not wait for the WAL.
    await this.#database.bulkTransaction(
      async (session) => {
        const rows = documents.length > 0 ? await this.#rows(session, documents) : [];
        const copyRows = rows.length >= stageRowsAtLeast ? session.copyRows : undefined;
        const staged = copyRows !== undefined;
        if (staged) {
          // Only a transaction that stages touches the staging table (see stageRowsAtLeast).
          await session.query(`CREATE TEMP TABLE IF NOT EXISTS ${this.#stageTable} (LIKE ${this.#tables.target}) ON COMMIT DELETE ROWS`);
          await copyRows(this.#stageTable, rows);
        }
        const partitions = [...position.checkpoints.keys()];
        const [result] = await session.query<{ held: number }>(
          rows.length === 0 ? this.#statements.commitEmpty : staged ? this.#statements.commitStaged : this.#statements.commitInline,
          [
            this.#name,
            this.#owner,
            position.streamSeq,
            partitions,
            partitions.map((p) => position.checkpoints.get(p)),
            ...(rows.length > 0 && !staged ? this.#projection.columns.map((_, i) => rows.map((row) => row[i])) : []),
          ],
        );
        if (result?.held !== 1) throw new FencedError(`projector ${this.#name} was taken over by another instance`);
      },
      'SET LOCAL synchronous_commit = off',
    );
    this.#position = position;
  }

  /** Loads the stored documents of the batch's keys and reduces the batch into them: the rows to write. */
  async #rows(session: BulkSession, documents: readonly D[]): Promise<unknown[][]> {
    const { keyOf, rowOf } = this.#projection;
    const stored = this.#replaces ? new Map<string, D>() : await this.#load(session, documents);
    return documents.map((document) => rowOf(this.#reduce(stored.get(keyId(keyOf(document))), document)));
  }

  /** The stored documents of the batch's keys, by key id. */
  async #load(session: BulkSession, documents: readonly D[]): Promise<Map<string, D>> {
    const { keyColumns, keyOf, documentOf } = this.#projection;
    const keys = documents.map(keyOf);
    const rows = await session.query<Record<string, unknown>>(this.#loadStored, keyColumns.map((_, i) => keys.map((key) => key[i])));
    return new Map(rows.map((row) => {
      const document = documentOf(row);
      return [keyId(keyOf(document)), document];
    }));
  }
}

function samePosition(a: ProjectionPosition, b: ProjectionPosition): boolean {
  return a.streamSeq === b.streamSeq && a.checkpoints.size === b.checkpoints.size && [...a.checkpoints].every(([partition, seq]) => b.checkpoints.get(partition) === seq);
}

/** Typed array parameters for `unnest`, one per column, numbered from `first`: `$6::int4[], $7::text[], ...`. */
function arrayParameters(columns: readonly { type: string }[], first: number): string {
  return columns.map((column, i) => `$${first + i}::${column.type}[]`).join(', ');
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
    await sql`TRUNCATE ${s}.segment_membership_rows, ${s}.segment_toggles, ${s}.segment_projector_checkpoints, ${s}.segment_projector_leases`.execute(trx);
  });
}
