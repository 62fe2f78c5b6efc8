// How each projected collection maps onto its table: key columns, and a row from a reduced document.
import type { Membership, SchemaName, Toggle } from '@segment/model';

export interface Projection<D = unknown> {
  /** The derived collection, e.g. `segment/memberships`. */
  readonly collection: string;
  readonly schema: SchemaName;
  readonly table: 'segment_memberships' | 'segment_toggles';
  /** Key columns with their Postgres array types, in key order. */
  readonly keyColumns: readonly { name: string; type: string }[];
  /** Every column, key columns first, with Postgres array types for `unnest`. */
  readonly columns: readonly { name: string; type: string }[];
  keyOf(document: D): (string | number)[];
  rowOf(document: D): unknown[];
}

export const membershipsProjection: Projection<Membership> = {
  collection: 'segment/memberships',
  schema: 'membership',
  table: 'segment_memberships',
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
    { name: 'document', type: 'jsonb' },
  ],
  keyOf: (m) => [m.segment.vendor, m.segment.name, m.user],
  rowOf: (m) => [m.segment.vendor, m.segment.name, m.user, m.first ?? null, m.last, m.member, m.value ?? null, m.first ?? null, m.last, JSON.stringify(m)],
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
};

export const projections = { memberships: membershipsProjection, toggles: togglesProjection } as const;
export type ProjectedCollection = keyof typeof projections;
