import { loadConfig } from '@segment/config';
import { openDatabase, segmentMembers } from '@segment/postgres';
import { numberFlag, parseCommandArgs, type Command } from '../command.ts';

const usage = `usage: segment members <vendor> <segment> [--limit N] [--after USER] [--all] [--former] [--json]

Lists the current members of a segment in user order (code point), a page at a time. Prints
"user first last" per line and, when more remain, the command for the next page.

options:
  --limit N          members per page (default 100)
  --after USER       start after this user (from the previous page)
  --all              every member, page after page
  --former           include users who were removed (member false)
  --json             one membership document per line (NDJSON)
  --database URL     Postgres (env SEGMENT_DATABASE_URL)
  --namespace NAME   the Postgres schema of the views (env SEGMENT_NAMESPACE, default segment)`;

export const command: Command = {
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      {
        limit: { type: 'string' },
        after: { type: 'string' },
        all: { type: 'boolean' },
        former: { type: 'boolean' },
        json: { type: 'boolean' },
        database: { type: 'string' },
        namespace: { type: 'string' },
      },
      usage,
      true,
    );
    if (positionals.length !== 2) {
      console.error(`segment members: give a vendor and a segment name\n\n${usage}`);
      return 2;
    }
    const vendor = numberFlag('vendor', positionals[0], 0, 1);
    const limit = numberFlag('limit', values.limit, 100, 1, 100_000);
    const config = loadConfig(process.env, { databaseUrl: values.database, namespace: values.namespace });
    const database = openDatabase({ connectionString: config.databaseUrl, schema: config.namespace, maxConnections: 1 });
    try {
      let after = values.after;
      let count = 0;
      do {
        const page = await segmentMembers(database, vendor, positionals[1]!, { limit, after, includeFormer: values.former });
        for (const m of page.members) {
          console.log(values.json ? JSON.stringify(m) : [m.user, m.first ?? '-', m.last, ...(values.former ? [m.member ? 'member' : 'removed'] : [])].join('\t'));
        }
        count += page.members.length;
        after = page.next;
        if (after !== undefined && !values.all) {
          console.error(`more: segment members ${vendor} ${JSON.stringify(positionals[1])} --limit ${limit} --after ${JSON.stringify(after)}`);
        }
      } while (values.all && after !== undefined);
      if (!values.json) console.error(`${count} member${count === 1 ? '' : 's'}`);
      return 0;
    } finally {
      await database.destroy();
    }
  },
};
