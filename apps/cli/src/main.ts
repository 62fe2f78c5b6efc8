// The `segment` command: a thin dispatcher; each command lives in its own module, loaded on demand.
import type { Command } from './command.ts';

const commands: Record<string, () => Promise<{ command: Command }>> = {
  generate: () => import('./commands/generate.ts'),
  test: () => import('./commands/test.ts'),
  develop: () => import('./commands/develop.ts'),
  setup: () => import('./commands/setup.ts'),
  derive: () => import('./commands/derive.ts'),
  dlq: () => import('./commands/dlq.ts'),
  ingest: () => import('./commands/ingest.ts'),
  publish: () => import('./commands/publish.ts'),
  project: () => import('./commands/project.ts'),
  rebuild: () => import('./commands/rebuild.ts'),
  user: () => import('./commands/user.ts'),
  members: () => import('./commands/members.ts'),
  clean: () => import('./commands/clean.ts'),
  bench: () => import('./commands/bench.ts'),
};

function usage(): string {
  return [
    'usage: segment <command> [options]',
    '',
    'commands:',
    ...Object.keys(commands).map((name) => `  ${name}`),
    '',
    'Run `segment <command> --help` for a command\'s options.',
  ].join('\n');
}

const [name, ...args] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h' || name === 'help') {
  console.log(usage());
  process.exit(name ? 0 : 2);
}
const load = commands[name];
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
