// The `segment` command: a thin dispatcher; each command lives in its own module, loaded on demand.
import type { Command } from './command.ts';

// Summaries live here too, so `segment --help` lists them without loading every command's module.
const commands: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  develop: { summary: 'the whole pipeline in one process, with a generator (npm start)', load: () => import('./commands/develop.ts') },
  setup: { summary: 'create or reconcile streams, buckets and the Postgres schema', load: () => import('./commands/setup.ts') },
  ingest: { summary: 'HTTP and WebSocket (json/v1) ingest gateway', load: () => import('./commands/ingest.ts') },
  publish: { summary: 'publish NDJSON events from stdin to JetStream', load: () => import('./commands/publish.ts') },
  derive: { summary: 'derivation worker (memberships, profiles, toggles)', load: () => import('./commands/derive.ts') },
  project: { summary: 'Postgres projectors', load: () => import('./commands/project.ts') },
  generate: { summary: "the example's synthetic events, as NDJSON", load: () => import('./commands/generate.ts') },
  test: { summary: 'catalog contract tests on the pipeline or the reference model', load: () => import('./commands/test.ts') },
  user: { summary: "a user's profile", load: () => import('./commands/user.ts') },
  members: { summary: 'members of a segment (paged)', load: () => import('./commands/members.ts') },
  dlq: { summary: 'list or replay dead letters', load: () => import('./commands/dlq.ts') },
  rebuild: { summary: "rebuild the Postgres views from the derived streams' history", load: () => import('./commands/rebuild.ts') },
  bench: { summary: 'end-to-end benchmark with baselines, latency and an exactness check', load: () => import('./commands/bench.ts') },
  clean: { summary: "remove segment develop's local state (.segment/)", load: () => import('./commands/clean.ts') },
};

function usage(): string {
  return [
    'usage: segment <command> [options]',
    '',
    'commands:',
    ...Object.entries(commands).map(([name, { summary }]) => `  ${name.padEnd(10)} ${summary}`),
    '',
    'Run `segment <command> --help` for a command\'s options.',
  ].join('\n');
}

const [name, ...args] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h' || name === 'help') {
  console.log(usage());
  process.exit(name ? 0 : 2);
}
const load = Object.hasOwn(commands, name) ? commands[name]!.load : undefined;
if (!load) {
  console.error(`segment: unknown command "${name}"\n\n${usage()}`);
  process.exit(2);
}
const { command } = await load();
try {
  process.exitCode = await command.run(args);
} catch (error) {
  console.error(`segment ${name}: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
