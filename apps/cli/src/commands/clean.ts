import { rm } from 'node:fs/promises';
import { parseCommandArgs, type Command } from '../command.ts';

const usage = `usage: segment clean [--state-dir DIR]

Removes the state of \`segment develop\`'s own services (the nats-server store and the embedded
PGlite database): the .segment/ folder. Streams and schemas on servers you run yourself are not touched.`;

export const command: Command = {
  async run(args) {
    const { values } = parseCommandArgs(args, { 'state-dir': { type: 'string' } }, usage);
    const dir = values['state-dir'] ?? '.segment';
    await rm(dir, { recursive: true, force: true });
    console.log(`removed ${dir}/`);
    return 0;
  },
};
