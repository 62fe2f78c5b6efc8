import type { Command } from '../command.ts';

// Placeholder until the streaming runtime lands: `npm start` explains what exists so far.
export const command: Command = {
  summary: 'run the whole pipeline in one process (ingest, derivations, projectors, generator)',
  async run() {
    console.log('segment develop: the streaming pipeline is not built yet; try `segment generate --count 10` or `segment test --engine memory FILE`.');
    return 0;
  },
};
