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
import { loadConfig } from '@segment/config';
import { pipelineEngineFactory } from '@segment/pipeline';
import { createLogger } from '@segment/telemetry';
import { parseCommandArgs, type Command } from '../command.ts';

const usage = `usage: segment test FILE... [--engine memory|nats]

Runs catalog contract tests (YAML, see shared/catalog/segment.tests.yaml), each on a fresh engine.
Prints a line per test as it ends, then "N passed, N failed".

Each test on the real pipeline gets its own namespace: streams, KV buckets, consumers and a
Postgres schema, all removed afterwards, so runs can repeat and run side by side.

options:
  --engine nats     the real pipeline on NATS JetStream and Postgres (default)
  --engine memory   the in-memory reference model
  --nats URL        NATS servers (env SEGMENT_NATS_URL, default nats://127.0.0.1:4222)
  --database URL    Postgres (env SEGMENT_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)

exit codes: 0 all passed, 1 a test failed, 2 usage error or unreadable file`;

function engineFor(name: string, values: { nats?: string; database?: string }): EngineFactory | undefined {
  if (name === 'memory') return createMemoryEngine;
  if (name !== 'nats') return undefined;
  const config = loadConfig(process.env, { natsUrl: values.nats, databaseUrl: values.database });
  return pipelineEngineFactory({ natsUrl: config.natsUrl, databaseUrl: config.databaseUrl, logger: createLogger({ name: 'test', level: process.env.SEGMENT_LOG_LEVEL ?? 'warn' }) });
}

export const command: Command = {
  async run(args) {
    const { values, positionals: files } = parseCommandArgs(
      args,
      { engine: { type: 'string', default: 'nats' }, nats: { type: 'string' }, database: { type: 'string' } },
      usage,
      true,
    );
    const engine = engineFor(values.engine, values);
    if (engine === undefined) {
      console.error(`segment test: --engine must be memory or nats, got "${values.engine}"\n\n${usage}`);
      return 2;
    }
    if (files.length === 0) {
      console.error(`segment test: no test files given\n\n${usage}`);
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
