import { dropSchema, migrate, openDatabase, type SegmentDatabase } from '@segment/postgres';

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
