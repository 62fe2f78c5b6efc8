import { connectNats, deprovision, namesFor } from '@segment/nats';
import { dropSchema, migrate, openDatabase, type SegmentDatabase } from '@segment/postgres';
import { natsUrl, randomNamespace } from './streams.ts';

export const databaseUrl = process.env.SEGMENT_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A migrated schema of its own for one test; dropped by the returned cleanup. */
export async function testDatabase(schema: string): Promise<{ database: SegmentDatabase; cleanup(): Promise<void> }> {
  const database = openDatabase({ connectionString: databaseUrl, schema, applicationName: 'segment-test' });
  await migrate(database);
  return {
    database,
    async cleanup() {
      await dropSchema(database);
      await database.destroy();
    },
  };
}

/**
 * An isolated namespace on the shared servers for one test: a NATS connection, the namespace's
 * names and a migrated Postgres schema; everything is removed when the test ends.
 */
export async function isolatedNamespace(t: { after(fn: () => Promise<void>): void }, prefix: string) {
  const namespace = randomNamespace(prefix);
  const nc = await connectNats({ servers: natsUrl, name: `test-${prefix}` });
  const names = namesFor(namespace);
  const { database, cleanup } = await testDatabase(namespace);
  t.after(async () => {
    await deprovision(nc, names);
    await nc.close();
    await cleanup();
  });
  return { namespace, natsUrl, nc, names, database };
}
