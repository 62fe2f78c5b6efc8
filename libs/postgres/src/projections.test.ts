import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Membership } from '@segment/model';
import { membershipsProjection } from './projections.ts';

test('memberships projection - a document read back from its row is the document written, absent fields absent', () => {
  const { columns, rowOf, documentColumns, documentOf } = membershipsProjection;
  const memberships: Membership[] = [
    { segment: { vendor: 7, name: 'Sports' }, user: 'u1', first: '2021-01-01T00:00:00.5-04:00', last: '2021-01-02T00:00:00Z', member: true, value: 'gold' },
    { segment: { vendor: 1, name: 'x' }, user: '', last: '2021-01-02T00:00:00Z', member: false },
  ];
  for (const membership of memberships) {
    const row = rowOf(membership);
    const stored = Object.fromEntries(documentColumns.map((name) => [name, row[columns.findIndex((c) => c.name === name)]]));
    assert.deepEqual(documentOf(stored), membership);
  }
});
