// One interface per table or view, collected into the Database type Kysely checks queries against.
import type { ColumnType, Generated } from 'kysely';

type Json = ColumnType<unknown, string, string>;
type Timestamp = ColumnType<Date, string, string>;

/** What the memberships projector writes: a membership's fields, one column each. */
export interface MembershipRowsTable {
  vendor: number;
  segment_name: string;
  user: string;
  first: string | null;
  last: string;
  member: boolean;
  value: string | null;
  /** `first` and `last` as timestamptz, for range queries (the text columns keep the original strings). */
  first_at: Timestamp | null;
  last_at: Timestamp;
}

/** The rows with the membership document built from them. */
export interface MembershipsView extends MembershipRowsTable {
  document: ColumnType<unknown, never, never>;
}

export interface ToggleRow {
  event: string;
  vendor: number;
  segment_name: string;
  user: string;
  timestamp: string;
  timestamp_at: Timestamp;
  remove: boolean;
  previous_event: string;
  previous_remove: boolean;
  document: Json;
}

export interface ProfilesView {
  user: string;
  document: unknown;
}

export interface SegmentSizesView {
  vendor: number;
  segment_name: string;
  members: ColumnType<string, never, never>;
  last_update: Date;
}

/** Where each projector stands per source partition: the highest source sequence reflected. */
export interface ProjectorCheckpointsTable {
  projector: string;
  partition: number;
  source_seq: ColumnType<string, number | string, number | string>;
}

/** One row per projector: who holds it (fencing), and how far it read its stream. */
export interface ProjectorLeasesTable {
  projector: string;
  owner: string;
  epoch: ColumnType<string, number | string, number | string>;
  stream_seq: ColumnType<string, number | string, number | string>;
  updated_at: Generated<Date>;
}

export interface Database {
  segment_membership_rows: MembershipRowsTable;
  segment_memberships: MembershipsView;
  segment_toggles: ToggleRow;
  segment_profiles: ProfilesView;
  segment_sizes: SegmentSizesView;
  segment_projector_checkpoints: ProjectorCheckpointsTable;
  segment_projector_leases: ProjectorLeasesTable;
}
