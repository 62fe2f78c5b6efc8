import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { schemaDocuments, schemaOf } from '@segment/model';
import { compileReduceTree, reductionOf } from '@segment/reduce';
import { BloomFilter, FencedError, keyId, type ProjectionPosition, type ProjectionStore } from '@segment/runtime';
import type { Logger } from '@segment/telemetry';
import type { BulkSession, SegmentDatabase } from './database.ts';
import type { Projection } from './projections.ts';

/**
 * From this many rows a commit COPYs them into a staging table, the faster way for large batches
 * (3,000 rows: 119 against 152 ms a transaction; 1,000–2,000 rows about even, measured here).
 * Fewer go into the commit's statement as arrays: no staging round trips and no emptying of the
 * staging table at commit (~0.8 ms), which made a 5-row transaction cost 3.2 ms instead of 1.7.
 */
export const stageRowsAtLeast = 1_000;

export interface ProjectionStoreOptions {
  logger?: Logger;
  /**
   * Sizes the filter of the keys the table holds (2^n bits; default 26, 8 MiB: ~0.15% false
   * "maybe"s at 4.6M keys, the memberships of 10M bench events; each costs one key looked up).
   */
  storedKeysLog2Bits?: number;
  /** Keys read from the table a query at a time when this store takes it over (default 50,000). */
  storedKeysPageSize?: number;
}

/**
 * The keys a table may hold: every key it holds, and a few more. A key it cannot hold has no
 * stored document to load: at 1M bench events two thirds of the memberships a projector wrote
 * were new, and loading the stored rows of every key was ~37% of Postgres's work per membership
 * written (probe). Until the table's keys are read (at the takeover, in the background) every key
 * may be held.
 */
class StoredKeys {
  readonly #filter: BloomFilter;
  #read = false;

  constructor(log2Bits: number) {
    this.#filter = new BloomFilter(log2Bits);
  }

  /** Adds a key the table is about to hold; returns whether it may have held it already. */
  add(id: string): boolean {
    const added = this.#filter.add(id);
    return !this.#read || added;
  }

  markRead(): void {
    this.#read = true;
  }
}

/**
 * A projection's table in Postgres. Each commit is one transaction: load the stored documents of
 * the batch's keys, reduce the batch into them with the schema's reduction, then move the lease
 * (fencing), write the rows and store the position in one statement.
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
  #acquired = false;
  /** The position last read or committed here: an empty commit at it only confirms the lease. */
  #position: ProjectionPosition | undefined;
  readonly #tables: { target: string; leases: string; checkpoints: string };
  readonly #stageTable: string;
  /**
   * The commit's statement: with no rows, with the rows staged, with the rows as arrays. It writes
   * them only while `lease` (its fence) holds: rows of keys the table does not hold with a plain
   * INSERT, the others with INSERT ... ON CONFLICT DO UPDATE, whose speculative insertion made a
   * new row ~20% dearer for Postgres (probe: 300,000 new rows into a 1M-row table, 6.4 s against 5.0–5.4 s).
   */
  readonly #statements: { commitEmpty: string; commitStaged: string; commitInline: string };
  readonly #loadStored: string;
  /** The table's key columns, one page at a time in key order: the first page, and the pages after a key. */
  readonly #keyPages: { first: string; after: string; size: number };
  /** Undefined for a last-write-wins collection (toggles): it needs no stored document to reduce into. */
  readonly #storedKeys: StoredKeys | undefined;
  #storedKeysRead: Promise<void> | undefined;
  readonly #logger: Logger | undefined;

  constructor(database: SegmentDatabase, projection: Projection<D>, name: string, options: ProjectionStoreOptions = {}) {
    this.#database = database;
    this.#projection = projection;
    this.#name = name;
    this.#logger = options.logger;
    this.#reduce = reductionOf(projection.schema) as unknown as (left: D | undefined, right: D) => D;
    const replaces = compileReduceTree(schemaOf(projection.schema), { documents: schemaDocuments }).strategy === 'lastWriteWins';
    this.#storedKeys = replaces ? undefined : new StoredKeys(options.storedKeysLog2Bits ?? 26);
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
    const insert = ([source, where]: readonly [string, string]) =>
      `INSERT INTO ${this.#tables.target} (${names}) SELECT ${names} FROM ${source} WHERE ${where} AND EXISTS (SELECT FROM lease)`;
    const write = (newRows: readonly [string, string], heldRows: readonly [string, string]) =>
      `, inserted AS (${insert(newRows)}), merged AS (${insert(heldRows)} ON CONFLICT (${keyNames}) DO UPDATE SET ${updates})`;
    const commit = (written: string) =>
      `WITH lease AS (
         UPDATE ${this.#tables.leases} SET stream_seq = $3, updated_at = now() WHERE projector = $1 AND owner = $2 RETURNING 1
       )${written}, checkpoints AS (
         INSERT INTO ${this.#tables.checkpoints} (projector, partition, source_seq)
         SELECT $1, p, s FROM unnest($4::int4[], $5::int8[]) AS t(p, s) WHERE EXISTS (SELECT FROM lease)
         ON CONFLICT (projector, partition) DO UPDATE SET source_seq = excluded.source_seq
       )
       SELECT count(*)::int AS held FROM lease`;
    const inline = (first: number) => [`unnest(${arrayParameters(columns, first)}) AS s(${names})`, 'true'] as const;
    this.#statements = {
      commitEmpty: commit(''),
      commitStaged: commit(write([this.#stageTable, 'NOT held'], [this.#stageTable, 'held'])),
      commitInline: commit(write(inline(6), inline(6 + columns.length))),
    };
    this.#loadStored = `SELECT ${projection.documentColumns.map((c) => `t.${quoteIdent(c)}`).join(', ')} FROM ${this.#tables.target} t JOIN unnest(${arrayParameters(keyColumns, 1)}) AS k(${keyNames}) USING (${keyNames})`;
    const size = options.storedKeysPageSize ?? 50_000;
    if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`storedKeysPageSize must be an integer >= 1, got ${size}`);
    const keyPage = (where: string) => `SELECT ${keyNames} FROM ${this.#tables.target}${where} ORDER BY ${keyNames} LIMIT ${size}`;
    const lastKey = keyColumns.map((column, i) => `$${i + 1}::${column.type}`).join(', ');
    this.#keyPages = { first: keyPage(''), after: keyPage(` WHERE (${keyNames}) > (${lastKey})`), size };
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
    // Only now: a previous holder can no longer write the table, and every key this one writes is added as it goes.
    this.#storedKeysRead ??= this.#readStoredKeys();
    return position;
  }

  /**
   * Resolves once the keys the table held at the takeover are read; until then every key's stored
   * document is loaded. A failed read is logged and started again at the next commit.
   */
  get storedKeysRead(): Promise<void> {
    return this.#storedKeysRead ?? Promise.resolve();
  }

  async #readStoredKeys(): Promise<void> {
    const storedKeys = this.#storedKeys;
    if (!storedKeys) return;
    const startedAt = performance.now();
    let keys = 0;
    try {
      const columns = this.#projection.keyColumns.map((column) => column.name);
      for (let last: unknown[] | undefined; ; ) {
        const page = await this.#database.bulkTransaction((session) => (last ? session.query(this.#keyPages.after, last) : session.query(this.#keyPages.first)));
        for (const row of page) storedKeys.add(keyId(columns.map((column) => row[column] as string | number)));
        keys += page.length;
        if (page.length < this.#keyPages.size) break;
        last = columns.map((column) => page.at(-1)![column]);
      }
      storedKeys.markRead();
      this.#logger?.info({ keys, ms: Math.round(performance.now() - startedAt) }, 'stored keys read: new keys are no longer looked up');
    } catch (error) {
      this.#logger?.warn({ err: error, keys }, 'reading the stored keys failed; every key is looked up until a later read succeeds');
      this.#storedKeysRead = undefined;
    }
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
    // that is the fence), writes the rows and stores the checkpoints, then COMMIT.
    // The checkpoint commits with the rows: if Postgres loses this transaction in a crash, it
    // loses both, and the projector replays it from NATS. So the commit need not wait for the WAL.
    if (this.#acquired) this.#storedKeysRead ??= this.#readStoredKeys();
    try {
      await this.#write(documents, position, true);
    } catch (error) {
      // Only a row written behind this projector's back (it is the table's single writer) makes a
      // key it took for new a duplicate: redo the commit looking every key up.
      if ((error as { code?: unknown }).code !== uniqueViolation) throw error;
      this.#logger?.warn({ err: error }, 'a key taken for new was already stored (written by something else); the commit is redone with every key looked up');
      await this.#write(documents, position, false);
    }
    this.#position = position;
  }

  async #write(documents: readonly D[], position: ProjectionPosition, trustStoredKeys: boolean): Promise<void> {
    await this.#database.bulkTransaction(
      async (session) => {
        const rows = documents.length > 0 ? await this.#rows(session, documents, trustStoredKeys) : { new: [], held: [] };
        const count = rows.new.length + rows.held.length;
        const copyRows = count >= stageRowsAtLeast ? session.copyRows : undefined;
        const staged = copyRows !== undefined;
        if (staged) {
          // Only a transaction that stages touches the staging table (see stageRowsAtLeast).
          await session.query(`CREATE TEMP TABLE IF NOT EXISTS ${this.#stageTable} (LIKE ${this.#tables.target}, held boolean NOT NULL) ON COMMIT DELETE ROWS`);
          // The rows are this commit's own arrays: the staging table's `held` column goes on their end.
          for (const row of rows.new) row.push(false);
          for (const row of rows.held) row.push(true);
          await copyRows(this.#stageTable, [...rows.new, ...rows.held]);
        }
        const partitions = [...position.checkpoints.keys()];
        const columnArrays = (of: unknown[][]) => this.#projection.columns.map((_, i) => of.map((row) => row[i]));
        const [result] = await session.query<{ held: number }>(
          count === 0 ? this.#statements.commitEmpty : staged ? this.#statements.commitStaged : this.#statements.commitInline,
          [
            this.#name,
            this.#owner,
            position.streamSeq,
            partitions,
            partitions.map((p) => position.checkpoints.get(p)),
            ...(count > 0 && !staged ? [...columnArrays(rows.new), ...columnArrays(rows.held)] : []),
          ],
        );
        if (result?.held !== 1) throw new FencedError(`projector ${this.#name} was taken over by another instance`);
      },
      'SET LOCAL synchronous_commit = off',
    );
  }

  /**
   * Loads the stored documents of the batch's keys and reduces the batch into them: the rows to
   * write, split into those of keys the table does not hold (new) and the others (held, or not
   * known: a last-write-wins collection loads nothing).
   */
  async #rows(session: BulkSession, documents: readonly D[], trustStoredKeys: boolean): Promise<{ new: unknown[][]; held: unknown[][] }> {
    const { keyOf, rowOf } = this.#projection;
    if (!this.#storedKeys) return { new: [], held: documents.map(rowOf) };
    const keys = documents.map(keyOf);
    const ids = keys.map(keyId);
    // Added before the write: a transaction that fails may still have committed.
    const mayHold = ids.map((id) => this.#storedKeys!.add(id) || !trustStoredKeys);
    const stored = await this.#load(session, keys.filter((_, i) => mayHold[i]));
    const rows: { new: unknown[][]; held: unknown[][] } = { new: [], held: [] };
    documents.forEach((document, i) => {
      const held = stored.get(ids[i]!);
      (held === undefined ? rows.new : rows.held).push(rowOf(this.#reduce(held, document)));
    });
    return rows;
  }

  /** The stored documents of these keys, by key id. */
  async #load(session: BulkSession, keys: readonly (string | number)[][]): Promise<Map<string, D>> {
    if (keys.length === 0) return new Map();
    const { keyColumns, keyOf, documentOf } = this.#projection;
    const rows = await session.query<Record<string, unknown>>(this.#loadStored, keyColumns.map((_, i) => keys.map((key) => key[i])));
    return new Map(rows.map((row) => {
      const document = documentOf(row);
      return [keyId(keyOf(document)), document];
    }));
  }
}

/** SQLSTATE unique_violation. */
const uniqueViolation = '23505';

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
