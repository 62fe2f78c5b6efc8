// The stages as processes of their own, so each one's CPU and memory can be read from /proc:
// `segment ingest|derive|project` spawned with this Node, plus the shared nats-server and Postgres
// processes, found by name.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export type StageName = 'ingest' | 'derive' | 'project';

export interface Stage {
  readonly name: StageName;
  readonly pid: number;
  /** The log line that said the stage is ready (pino JSON). */
  readonly ready: Record<string, unknown>;
  /** The last lines the stage wrote, for error messages. */
  tail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (or signal name). */
  stop(graceMs?: number): Promise<number | string | null>;
}

export interface StartStageOptions {
  /** `apps/cli/bin/segment.js`. */
  cli: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The `msg` of the info log line a stage writes once it runs. */
  readyMessage: string;
  timeoutMs: number;
  /** Warnings and errors of the stage, one line each. */
  onWarning: (line: string) => void;
  /** Info lines worth a line of the bench's output, by `msg` (e.g. what a stage reports as it stops). */
  summaryMessages?: ReadonlySet<string>;
  onSummary?: (line: string) => void;
}

const tailLines = 40;
/** What the `segment` command's shebang gives Node (apps/cli/bin/segment.js): stages run as deployed. */
const stageNodeFlags = ['--max-semi-space-size=16'];
/** pino's numeric level of `warn`. */
const warnLevel = 40;

/** A log line's own fields as `key value`, without pino's standard ones. */
function describeFields(line: Record<string, unknown>): string {
  const standard = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'name', 'err']);
  return Object.entries(line)
    .filter(([key]) => !standard.has(key))
    .map(([key, value]) => `${key} ${typeof value === 'number' ? value.toLocaleString('en-US') : String(value)}`)
    .join(', ');
}

function exitOf(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
}

/**
 * Spawns `segment <name> ...` at log level info (a stage logs at info only while starting, nothing
 * per transaction) and resolves once it logs `readyMessage`; fails if it exits or times out first.
 */
export async function startStage(name: StageName, options: StartStageOptions): Promise<Stage> {
  const child = spawn(process.execPath, [...stageNodeFlags, options.cli, name, ...options.args, '--log-level', 'info'], { env: options.env, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  const exited = exitOf(child);
  let resolveReady: (line: Record<string, unknown>) => void = () => undefined;
  const readyLine = new Promise<Record<string, unknown>>((resolve) => (resolveReady = resolve));
  createInterface({ input: child.stderr! }).on('line', (line) => {
    lines.push(line);
    if (lines.length > tailLines) lines.shift();
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      options.onWarning(`[${name}] ${line}`);
      return;
    }
    if (parsed.msg === options.readyMessage) resolveReady(parsed);
    if (options.summaryMessages?.has(String(parsed.msg))) options.onSummary?.(`[${name}] ${String(parsed.msg)}: ${describeFields(parsed)}`);
    if (typeof parsed.level === 'number' && parsed.level >= warnLevel) {
      const err = parsed.err as { message?: string } | undefined;
      const fields = describeFields(parsed);
      options.onWarning(`[${name}] ${String(parsed.msg)}${err?.message ? `: ${err.message}` : fields ? `: ${fields}` : ''}`);
    }
  });
  const tail = () => lines.join('\n');
  const stop = async (graceMs = 20_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return exited;
  };
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    readyLine.then((line) => ({ ready: line })),
    exited.then((code) => ({ exited: code })),
    new Promise<{ timedOut: true }>((resolve) => (timer = setTimeout(() => resolve({ timedOut: true }), options.timeoutMs))),
  ]);
  clearTimeout(timer);
  if (!('ready' in outcome)) {
    await stop(1_000);
    const why = 'exited' in outcome ? `exited (${outcome.exited})` : `was not ready within ${options.timeoutMs} ms`;
    throw new Error(`segment ${name} ${why} while starting:\n${tail()}`);
  }
  return { name, pid: child.pid!, ready: outcome.ready, tail, stop };
}

let clockTicks: number | undefined;

/** Kernel clock ticks per second, the unit of /proc/<pid>/stat times (`getconf CLK_TCK`, normally 100). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** A process's /proc stat fields after the command name (which may hold spaces, hence the last ')'), or undefined when it is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

// Indexes into statFields (proc(5) numbers fields from 1, the state being field 3).
const ppidField = 1;
const utimeField = 11;
const stimeField = 12;
const cutimeField = 13;
const cstimeField = 14;

/** User + system CPU seconds a process has used so far, or undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields && (Number(fields[utimeField]) + Number(fields[stimeField])) / clockTicksPerSecond();
}

/**
 * CPU seconds used so far by the processes named `name`, those that exited included: the live
 * ones' own, plus what the group's root (whose parent is not of the group: the postmaster) took
 * over from the children it reaped. Postgres runs a backend per connection, and one that ended
 * during a phase took its CPU with it (a 10M run counted 8 µs per event where others counted 14–22).
 */
export function groupCpuSeconds(name: string): number {
  const pids = new Set(pidsNamed(name));
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    if (!fields) continue;
    ticks += Number(fields[utimeField]) + Number(fields[stimeField]);
    if (!pids.has(Number(fields[ppidField]))) ticks += Number(fields[cutimeField]) + Number(fields[cstimeField]);
  }
  return ticks / clockTicksPerSecond();
}

/** Peak resident set size (VmHWM) of a process in MiB, or undefined when it is gone. */
export function peakRssMb(pid: number): number | undefined {
  return statusMb(pid, 'VmHWM');
}

/** Resident set size now (VmRSS) of a process in MiB, or undefined when it is gone. */
export function rssMb(pid: number): number | undefined {
  return statusMb(pid, 'VmRSS');
}

function statusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Pids whose command name is exactly `name` (as `pgrep -x`). */
export function pidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '');
  } catch {
    return [];
  }
}

/**
 * The local nats-server serving `natsUrl`: the one started with that port (`-p`/`--port`), or for
 * 4222 one started without a port. Undefined when the server is elsewhere or not recognisable.
 */
export function natsServerPid(natsUrl: string): number | undefined {
  const first = natsUrl.split(',')[0]!.trim();
  let url: URL;
  try {
    url = new URL(first.includes('://') ? first : `nats://${first}`);
  } catch {
    return undefined;
  }
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(url.hostname)) return undefined;
  const port = url.port === '' ? '4222' : url.port;
  const candidates = pidsNamed('nats-server').map((pid) => {
    const args = commandLine(pid);
    let listening: string | undefined;
    args.forEach((arg, i) => {
      if (arg === '-p' || arg === '--port' || arg === '-port') listening = args[i + 1];
      else if (arg.startsWith('--port=')) listening = arg.slice('--port='.length);
    });
    return { pid, port: listening ?? '4222' };
  });
  return candidates.find((c) => c.port === port)?.pid;
}

/** CPU seconds of each of a set of processes now, by pid. */
export type CpuSnapshot = Map<number, number>;

export function snapshotCpu(pids: readonly number[]): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map();
  for (const pid of pids) {
    const seconds = cpuSeconds(pid);
    if (seconds !== undefined) snapshot.set(pid, seconds);
  }
  return snapshot;
}
