// The questions of the example, as plain functions taking the database first.
import { sql } from 'kysely';
import type { Membership, Profile, Toggle } from '@segment/model';
import type { SegmentDatabase } from './database.ts';

/** A user's profile: every segment they were ever seen in, sorted by name then vendor. */
export async function userProfile(database: SegmentDatabase, user: string): Promise<Profile | undefined> {
  const row = await database.db.selectFrom('segment_profiles').select('document').where('user', '=', user).executeTakeFirst();
  return row?.document as Profile | undefined;
}

export interface MembersPage {
  members: Membership[];
  /** Pass as `after` for the next page; undefined on the last page. */
  next: string | undefined;
}

/** Current members of a segment, in user order (code point), a page at a time (keyset paging: stable under writes). */
export async function segmentMembers(
  database: SegmentDatabase,
  vendor: number,
  segment: string,
  options: { limit: number; after?: string; includeFormer?: boolean },
): Promise<MembersPage> {
  let query = database.db
    .selectFrom('segment_memberships')
    .select('document')
    .where('vendor', '=', vendor)
    .where('segment_name', '=', segment)
    .orderBy('user')
    .limit(options.limit + 1);
  if (!options.includeFormer) query = query.where('member', '=', true);
  if (options.after !== undefined) query = query.where('user', '>', options.after);
  const rows = await query.execute();
  const members = rows.slice(0, options.limit).map((r) => r.document as Membership);
  return { members, next: rows.length > options.limit ? members.at(-1)!.user : undefined };
}

/** A whole projected collection as a reader sees it, ordered by the collection's key. */
export async function readCollection(database: SegmentDatabase, collection: 'segment/memberships' | 'segment/profiles' | 'segment/toggles'): Promise<unknown[]> {
  const s = sql.id(database.schema);
  const query =
    collection === 'segment/memberships'
      ? sql<{ document: Membership }>`SELECT document FROM ${s}.segment_memberships ORDER BY vendor, segment_name, "user"`
      : collection === 'segment/profiles'
        ? sql<{ document: Profile }>`SELECT document FROM ${s}.segment_profiles ORDER BY "user"`
        : sql<{ document: Toggle }>`SELECT document FROM ${s}.segment_toggles ORDER BY event`;
  const { rows } = await query.execute(database.db);
  return rows.map((r) => r.document);
}
