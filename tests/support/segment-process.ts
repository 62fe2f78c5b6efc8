import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Prng } from '@segment/segment';
import { waitFor } from './streams.ts';

const cli = fileURLToPath(new URL('../../apps/cli/bin/segment.js', import.meta.url));

/** One `segment` process (fault suites), with the tail of what it printed kept for failure messages. */
export class SegmentProcess {
  readonly child: ChildProcess;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly label: string;
  #output = '';
  #partial = '';

  /** `onLine` sees every complete line the process prints (e.g. to count a log code). */
  constructor(label: string, args: string[], onLine?: (line: string) => void) {
    this.label = label;
    this.child = spawn(process.execPath, [cli, ...args, '--log-level', process.env.SEGMENT_FAULT_LOG_LEVEL ?? 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.#output = (this.#output + text).slice(-16_384);
      if (!onLine) return;
      const lines = (this.#partial + text).split('\n');
      this.#partial = lines.pop()!;
      for (const line of lines) onLine(line);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exit = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get output(): string {
    return this.#output;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (this.alive) this.child.kill(signal);
    await this.exit;
  }
}

/** Fails the test with `message`, the processes' output tails in its diagnostics. */
export function failWithOutput(t: { diagnostic(message: string): void }, message: string, ...processes: (SegmentProcess | undefined)[]): never {
  for (const p of processes) if (p) t.diagnostic(`${p.label} (pid ${p.child.pid}) output (tail):\n${p.output}`);
  throw new Error(message);
}

/** `waitFor`, with the process's output in the failure when it times out. */
export async function waitForProcess(
  t: { diagnostic(message: string): void },
  p: SegmentProcess,
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => Promise<string> | string,
): Promise<void> {
  try {
    await waitFor(check, timeoutMs, describe);
  } catch (error) {
    failWithOutput(t, error instanceof Error ? error.message : String(error), p);
  }
}

/**
 * A fault run's seeded randomness (SEGMENT_FAULT_SEED=N repeats a run's kill timings) and its
 * timeline of what the test did when, to line up with the times of messages when diagnosing a failure.
 */
export function faultRun(t: { diagnostic(message: string): void }): { random: Prng; timeline: string[]; mark(what: string): void } {
  const seed = Number(process.env.SEGMENT_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.diagnostic(`seed ${seed} (SEGMENT_FAULT_SEED=${seed} repeats the kill timings)`);
  const timeline: string[] = [];
  return { random: new Prng(seed), timeline, mark: (what) => timeline.push(`${new Date().toISOString()} ${what}`) };
}
