import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { schemaDocuments, schemaOf } from '@segment/model';
import { compileReduceTree, reductionOf } from '@segment/reduce';
import { FencedError, keyId, type ProjectionPosition, type ProjectionStore } from '@segment/runtime';
import type { SegmentDatabase } from './database.ts';
import type { Projection } from './projections.ts';
import type { Database } from './tables.ts';

/**
 * A projection's table in Postgres. Each commit is one transaction: lock the lease row (fencing),
 * load the stored documents of the batch's keys, reduce the batch into them with the schema's
 * reduction, upsert every row with one `unnest` statement, and store the position.
 */
export class PostgresProjectionStore<D> implements ProjectionStore<D> {
  readonly #database: SegmentDatabase;
  readonly #projection: Projection<D>;
  readonly #name: string;
  readonly #owner = randomUUID();
  readonly #reduce: (left: D | undefined, right: D) => D;
  /** A last-write-wins collection (toggles) needs no stored document to reduce into. */
  readonly #replaces: boolean;

  constructor(database: SegmentDatabase, projection: Projection<D>, name: string) {
    this.#database = database;
    this.#projection = projection;
    this.#name = name;
    this.#reduce = reductionOf(projection.schema) as unknown as (left: D | undefined, right: D) => D;
    this.#replaces = compileReduceTree(schemaOf(projection.schema), { documents: schemaDocuments }).strategy === 'lastWriteWins';
  }

  /** The projector's name, e.g. `project_memberships`; checkpoints and lease are stored under it. */
  get name(): string {
    return this.#name;
  }

  async acquire(): Promise<ProjectionPosition> {
    return this.#database.db.transaction().execute(async (trx) => {
      // Taking over bumps the epoch and changes the owner: the previous holder's next commit fails.
      const lease = await trx
        .insertInto('segment_projector_leases')
        .values({ projector: this.#name, owner: this.#owner, epoch: 1, stream_seq: 0 })
        .onConflict((oc) => oc.column('projector').doUpdateSet({ owner: this.#owner, epoch: sql`segment_projector_leases.epoch + 1`, updated_at: sql`now()` }))
        .returning(['stream_seq'])
        .executeTakeFirstOrThrow();
      const rows = await trx.selectFrom('segment_projector_checkpoints').select(['partition', 'source_seq']).where('projector', '=', this.#name).execute();
      return { streamSeq: Number(lease.stream_seq), checkpoints: new Map(rows.map((r) => [r.partition, Number(r.source_seq)])) };
    });
  }

  async commit(documents: readonly D[], position: ProjectionPosition): Promise<void> {
    await this.#database.db.transaction().execute(async (trx) => {
      const lease = await trx.selectFrom('segment_projector_leases').select('owner').where('projector', '=', this.#name).forUpdate().executeTakeFirst();
      if (lease?.owner !== this.#owner) throw new FencedError(`projector ${this.#name} was taken over by another instance`);
      if (documents.length > 0) await this.#upsert(trx, documents);
      const partitions = [...position.checkpoints.keys()];
      if (partitions.length > 0) {
        await sql`
          INSERT INTO ${sql.id(this.#database.schema)}.segment_projector_checkpoints (projector, partition, source_seq)
          SELECT ${this.#name}, p, s FROM unnest(${partitions}::int4[], ${partitions.map((p) => position.checkpoints.get(p))}::int8[]) AS t(p, s)
          ON CONFLICT (projector, partition) DO UPDATE SET source_seq = excluded.source_seq`.execute(trx);
      }
      await trx.updateTable('segment_projector_leases').set({ stream_seq: position.streamSeq, updated_at: sql`now()` }).where('projector', '=', this.#name).execute();
    });
  }

  async #upsert(trx: Transaction<Database>, documents: readonly D[]): Promise<void> {
    const { table, keyColumns, columns, keyOf, rowOf } = this.#projection;
    const schema = sql.id(this.#database.schema);
    const stored = this.#replaces ? new Map<string, D>() : await this.#load(trx, documents);
    const rows = documents.map((document) => rowOf(this.#reduce(stored.get(keyId(keyOf(document))), document)));
    const arrays = columns.map((column, i) => sql`${rows.map((row) => row[i])}::${sql.raw(column.type)}[]`);
    const names = sql.join(columns.map((c) => sql.id(c.name)));
    const updates = sql.join(
      columns.filter((c) => !keyColumns.some((k) => k.name === c.name)).map((c) => sql`${sql.id(c.name)} = excluded.${sql.id(c.name)}`),
    );
    await sql`
      INSERT INTO ${schema}.${sql.id(table)} (${names})
      SELECT * FROM unnest(${sql.join(arrays)})
      ON CONFLICT (${sql.join(keyColumns.map((k) => sql.id(k.name)))}) DO UPDATE SET ${updates}`.execute(trx);
  }

  /** The stored documents of the batch's keys, by key id. */
  async #load(trx: Kysely<Database>, documents: readonly D[]): Promise<Map<string, D>> {
    const { table, keyColumns, keyOf } = this.#projection;
    const keys = documents.map(keyOf);
    const arrays = keyColumns.map((column, i) => sql`${keys.map((key) => key[i])}::${sql.raw(column.type)}[]`);
    const names = sql.join(keyColumns.map((k) => sql.id(k.name)));
    const result = await sql<{ document: D }>`
      SELECT t.document FROM ${sql.id(this.#database.schema)}.${sql.id(table)} t
      JOIN unnest(${sql.join(arrays)}) AS k(${names}) USING (${names})`.execute(trx);
    return new Map(result.rows.map(({ document }) => [keyId(keyOf(document)), document]));
  }
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
