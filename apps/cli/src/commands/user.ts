import { loadConfig } from '@segment/config';
import { openDatabase, userProfile } from '@segment/postgres';
import { parseCommandArgs, type Command } from '../command.ts';

const usage = `usage: segment user <id> [--database URL] [--namespace NAME] [--members-only]

Prints a user's profile (JSON): every segment they were seen in, with first/last/member/value.

options:
  --database URL     Postgres (env SEGMENT_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)
  --namespace NAME   the Postgres schema of the views (env SEGMENT_NAMESPACE, default segment)
  --members-only     only the segments the user is currently a member of

exit codes: 0 found, 1 no such user, 2 usage error`;

export const command: Command = {
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      { database: { type: 'string' }, namespace: { type: 'string' }, 'members-only': { type: 'boolean' } },
      usage,
      true,
    );
    if (positionals.length !== 1) {
      console.error(`segment user: give exactly one user id\n\n${usage}`);
      return 2;
    }
    const config = loadConfig(process.env, { databaseUrl: values.database, namespace: values.namespace });
    const database = openDatabase({ connectionString: config.databaseUrl, schema: config.namespace, maxConnections: 1 });
    try {
      const profile = await userProfile(database, positionals[0]!);
      if (!profile) {
        console.error(`segment user: no user "${positionals[0]}" in ${config.namespace}`);
        return 1;
      }
      if (values['members-only']) profile.segments = profile.segments.filter((s) => s.member);
      console.log(JSON.stringify(profile, null, 2));
      return 0;
    } finally {
      await database.destroy();
    }
  },
};
