import { readFile } from 'node:fs/promises';
import {
  createMemoryEngine,
  formatResultLine,
  formatSummary,
  parseCatalog,
  runCatalog,
  type CatalogTest,
  type EngineFactory,
} from '@segment/catalog';
import { parseCommandArgs, type Command } from '../command.ts';

const usage = `usage: segment test FILE... [--engine memory|nats]

Runs catalog contract tests (YAML, see shared/catalog/segment.tests.yaml), each on a fresh engine.
Prints a line per test as it ends, then "N passed, N failed".

options:
  --engine nats     the real pipeline on NATS JetStream and Postgres (default)
  --engine memory   the in-memory reference model

exit codes: 0 all passed, 1 a test failed, 2 usage error or unreadable file`;

const engines: Record<string, EngineFactory | string> = {
  memory: createMemoryEngine,
  nats: 'the nats engine arrives with the streaming runtime; use --engine memory',
};

export const command: Command = {
  summary: 'run catalog contract tests (YAML) against the pipeline or the reference model',
  async run(args) {
    const { values, positionals: files } = parseCommandArgs(args, { engine: { type: 'string', default: 'nats' } }, usage, true);
    const engine = Object.hasOwn(engines, values.engine) ? engines[values.engine] : undefined;
    if (engine === undefined) {
      console.error(`segment test: --engine must be memory or nats, got "${values.engine}"\n\n${usage}`);
      return 2;
    }
    if (files.length === 0) {
      console.error(`segment test: no test files given\n\n${usage}`);
      return 2;
    }
    if (typeof engine === 'string') {
      console.error(`segment test: ${engine}`);
      return 2;
    }

    // Every file is read and parsed before any test runs: a typo in the last file fails fast.
    const tests: CatalogTest[] = [];
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        console.error(`segment test: cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
        return 2;
      }
      try {
        tests.push(...parseCatalog(text, file));
      } catch (error) {
        // Format errors already name the file, the test and the step.
        console.error(`segment test: ${error instanceof Error ? error.message : String(error)}`);
        return 2;
      }
    }

    const run = await runCatalog(tests, engine, (result) => console.log(formatResultLine(result)));
    console.log(formatSummary(run));
    return run.failed > 0 ? 1 : 0;
  },
};
