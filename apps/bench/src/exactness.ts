// Exactness: every row a reader sees in Postgres against the reference model, key by key.
import { isDeepStrictEqual } from 'node:util';
import { sql } from 'kysely';
import { collections, pointerGet } from '@segment/model';
import { readCollection, type SegmentDatabase } from '@segment/postgres';
import type { ReferenceModel } from '@segment/segment';

export type CheckedCollection = 'segment/memberships' | 'segment/profiles' | 'segment/toggles';
export const checkedCollections: readonly CheckedCollection[] = ['segment/memberships', 'segment/profiles', 'segment/toggles'];

export interface CollectionDiff {
  collection: CheckedCollection;
  expected: number;
  actual: number;
  missing: number;
  extra: number;
  different: number;
  /** The first few differences, one line each. */
  examples: string[];
}

export interface ExactnessResult {
  /** `full`: every row; `sampled`: the rows of the sampled users only (see `sampleEvery`). */
  mode: 'full' | 'sampled';
  sampleEvery: number;
  collections: CollectionDiff[];
  mismatches: number;
}

const exampleLimit = 5;
const brief = (document: unknown) => {
  const text = JSON.stringify(document);
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
};

/** Compares two collections by key: rows only in `expected` are missing, only in `actual` extra. */
export function diffCollection(collection: CheckedCollection, expected: readonly unknown[], actual: readonly unknown[]): CollectionDiff {
  const { key } = collections[collection];
  const keyOf = (document: unknown) => JSON.stringify(key.map((pointer) => pointerGet(document, pointer)));
  const wanted = new Map<string, unknown>();
  for (const document of expected) wanted.set(keyOf(document), document);
  const diff: CollectionDiff = { collection, expected: expected.length, actual: actual.length, missing: 0, extra: 0, different: 0, examples: [] };
  const note = (line: string) => void (diff.examples.length < exampleLimit && diff.examples.push(`${collection} ${line}`));
  for (const document of actual) {
    const id = keyOf(document);
    if (!wanted.has(id)) {
      diff.extra++;
      note(`extra ${id}: ${brief(document)}`);
      continue;
    }
    const reference = wanted.get(id);
    wanted.delete(id);
    if (!isDeepStrictEqual(document, reference)) {
      diff.different++;
      note(`different ${id}: postgres ${brief(document)} reference ${brief(reference)}`);
    }
  }
  for (const [id, document] of wanted) {
    diff.missing++;
    note(`missing ${id}: ${brief(document)}`);
  }
  return diff;
}

const tables: Record<CheckedCollection, string> = {
  'segment/memberships': 'segment_memberships',
  'segment/profiles': 'segment_profiles',
  'segment/toggles': 'segment_toggles',
};
const usersPerQuery = 5_000;

/** The rows of some users only, in no particular order (the comparison is by key). */
async function readUsers(database: SegmentDatabase, collection: CheckedCollection, users: readonly string[]): Promise<unknown[]> {
  const table = sql.id(database.schema, tables[collection]);
  const documents: unknown[] = [];
  for (let from = 0; from < users.length; from += usersPerQuery) {
    const batch = users.slice(from, from + usersPerQuery);
    const { rows } = await sql<{ document: unknown }>`SELECT document FROM ${table} WHERE "user" = ANY(${batch})`.execute(database.db);
    for (const row of rows) documents.push(row.document);
  }
  return documents;
}

/**
 * Reads each collection as a reader sees it and diffs it against the reference. With a sample
 * (`sampleEvery` > 1) the reference holds the sampled users' events only, and only their rows are
 * read; rows of other users are not checked.
 */
export async function checkExactness(database: SegmentDatabase, reference: ReferenceModel, sampleEvery: number): Promise<ExactnessResult> {
  const users = sampleEvery > 1 ? reference.profiles.map((profile) => profile.user) : undefined;
  const result: ExactnessResult = { mode: users ? 'sampled' : 'full', sampleEvery, collections: [], mismatches: 0 };
  // One collection at a time: a million events make ~10^6 documents on each side.
  const expectedOf: Record<CheckedCollection, () => readonly unknown[]> = {
    'segment/memberships': () => reference.memberships,
    'segment/profiles': () => reference.profiles,
    'segment/toggles': () => reference.toggles,
  };
  for (const collection of checkedCollections) {
    const actual = users ? await readUsers(database, collection, users) : await readCollection(database, collection);
    const diff = diffCollection(collection, expectedOf[collection](), actual);
    result.collections.push(diff);
    result.mismatches += diff.missing + diff.extra + diff.different;
  }
  return result;
}
