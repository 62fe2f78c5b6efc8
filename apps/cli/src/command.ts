import { parseArgs, type ParseArgsConfig } from 'node:util';

/** One `segment` sub-command: `run` gets the arguments after its name and returns the exit code. */
export interface Command {
  run(args: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses a command's flags; `--help` prints the usage and exits, an unknown flag is a usage error. */
export function parseCommandArgs<O extends Options>(
  args: string[],
  options: O,
  usage: string,
  allowPositionals = false,
) {
  try {
    const parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
    if ((parsed.values as { help?: boolean }).help) {
      console.log(usage);
      process.exit(0);
    }
    return parsed;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${usage}`);
    process.exit(2);
  }
}

/** Reads a numeric flag, failing clearly on anything that is not a finite number in range. */
export function numberFlag(name: string, raw: string | undefined, fallback: number, min = -Infinity, max = Infinity): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`--${name} must be a number${Number.isFinite(min) ? ` >= ${min}` : ''}${Number.isFinite(max) ? ` and <= ${max}` : ''}, got "${raw}"`);
  }
  return value;
}

/** Reads an integer flag; `_` may group digits (`--events 1_000_000`). */
export function integerFlag(name: string, raw: string | undefined, fallback: number, min = -Infinity, max = Infinity): number {
  const value = numberFlag(name, raw?.replaceAll('_', ''), fallback, min, max);
  if (raw !== undefined && !Number.isSafeInteger(value)) throw new Error(`--${name} must be an integer, got "${raw}"`);
  return value;
}

/** Aborts on the first SIGTERM or SIGINT (Ctrl-C), so a command can drain; a second one exits at once. */
export function shutdownSignal(onSignal?: (signal: NodeJS.Signals) => void): AbortSignal {
  const controller = new AbortController();
  const handle = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    onSignal?.(signal);
    controller.abort(signal);
  };
  process.once('SIGTERM', handle);
  process.on('SIGINT', handle);
  return controller.signal;
}
