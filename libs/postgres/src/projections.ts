// How each projected collection maps onto its table: key columns, and a row from a reduced document.
import type { Membership, SchemaName, Toggle } from '@segment/model';

export interface Projection<D = unknown> {
  /** The derived collection, e.g. `segment/memberships`. */
  readonly collection: string;
  readonly schema: SchemaName;
  readonly table: 'segment_membership_rows' | 'segment_toggles';
  /** Key columns with their Postgres array types, in key order. */
  readonly keyColumns: readonly { name: string; type: string }[];
  /** Every column, key columns first, with Postgres array types for `unnest`. */
  readonly columns: readonly { name: string; type: string }[];
  keyOf(document: D): (string | number)[];
  rowOf(document: D): unknown[];
  /** The columns a stored document is read back from, and the document from them. */
  readonly documentColumns: readonly string[];
  documentOf(row: Record<string, unknown>): D;
}

export const membershipsProjection: Projection<Membership> = {
  collection: 'segment/memberships',
  schema: 'membership',
  table: 'segment_membership_rows',
  keyColumns: [
    { name: 'vendor', type: 'int4' },
    { name: 'segment_name', type: 'text' },
    { name: 'user', type: 'text' },
  ],
  columns: [
    { name: 'vendor', type: 'int4' },
    { name: 'segment_name', type: 'text' },
    { name: 'user', type: 'text' },
    { name: 'first', type: 'text' },
    { name: 'last', type: 'text' },
    { name: 'member', type: 'bool' },
    { name: 'value', type: 'text' },
    { name: 'first_at', type: 'timestamptz' },
    { name: 'last_at', type: 'timestamptz' },
  ],
  keyOf: (m) => [m.segment.vendor, m.segment.name, m.user],
  rowOf: (m) => [m.segment.vendor, m.segment.name, m.user, m.first ?? null, m.last, m.member, m.value ?? null, m.first ?? null, m.last],
  // The view segment_memberships builds the same document in SQL (migration 0002).
  documentColumns: ['vendor', 'segment_name', 'user', 'first', 'last', 'member', 'value'],
  documentOf: (row) => {
    const { vendor, segment_name, user, first, last, member, value } = row as { vendor: number; segment_name: string; user: string; first: string | null; last: string; member: boolean; value: string | null };
    return { segment: { vendor, name: segment_name }, user, ...(first !== null && { first }), last, member, ...(value !== null && { value }) };
  },
};

export const togglesProjection: Projection<Toggle> = {
  collection: 'segment/toggles',
  schema: 'toggle',
  table: 'segment_toggles',
  keyColumns: [{ name: 'event', type: 'text' }],
  columns: [
    { name: 'event', type: 'text' },
    { name: 'vendor', type: 'int4' },
    { name: 'segment_name', type: 'text' },
    { name: 'user', type: 'text' },
    { name: 'timestamp', type: 'text' },
    { name: 'timestamp_at', type: 'timestamptz' },
    { name: 'remove', type: 'bool' },
    { name: 'previous_event', type: 'text' },
    { name: 'previous_remove', type: 'bool' },
    { name: 'document', type: 'jsonb' },
  ],
  keyOf: (t) => [t.event],
  rowOf: (t) => [t.event, t.segment.vendor, t.segment.name, t.user, t.timestamp, t.timestamp, Boolean(t.remove), t.previous.event, Boolean(t.previous.remove), JSON.stringify(t)],
  documentColumns: ['document'],
  documentOf: (row) => row.document as Toggle,
};

export const projections = { memberships: membershipsProjection, toggles: togglesProjection } as const;
export type ProjectedCollection = keyof typeof projections;
