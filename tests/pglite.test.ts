import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresProjectionStore, membershipsProjection, migrate, openDatabase, readCollection, togglesProjection } from '@segment/postgres';
import { replay } from '@segment/segment';
import { generateEvents } from './support/pipeline.ts';

test('pglite - the embedded database of `segment develop` runs the same migrations, projections and views', async () => {
  const database = openDatabase({ connectionString: 'pglite:memory://', schema: 'segment' });
  try {
    await migrate(database);
    const expected = replay(generateEvents(2_000, 9));
    const memberships = new PostgresProjectionStore(database, membershipsProjection, 'project_memberships');
    await memberships.acquire();
    await memberships.commit(expected.memberships.slice(0, 700), { streamSeq: 1, checkpoints: new Map([[1, 5]]) });
    await memberships.commit(expected.memberships.slice(700), { streamSeq: 2, checkpoints: new Map([[1, 9]]) });
    const toggles = new PostgresProjectionStore(database, togglesProjection, 'project_toggles');
    await toggles.acquire();
    await toggles.commit(expected.toggles, { streamSeq: 1, checkpoints: new Map([[1, 9]]) });
    assert.deepEqual(await readCollection(database, 'segment/memberships'), expected.memberships);
    assert.deepEqual(await readCollection(database, 'segment/profiles'), expected.profiles);
    assert.deepEqual(await readCollection(database, 'segment/toggles'), expected.toggles);
    assert.equal((await memberships.acquire()).streamSeq, 2);
  } finally {
    await database.destroy();
  }
});
