// A nats-server of a suite's own, for tests that kill, restart or reconfigure it. The shared server
// at 127.0.0.1:4222 is never touched: each instance takes a free loopback port and a temp store.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePort } from '@segment/devenv';

export interface NatsServerOptions {
  /** Enable JetStream (`-js`), stored under `storeDir`. Default true. */
  jetstream?: boolean;
  /** Where JetStream keeps its data; default a fresh dir under os.tmpdir(), removed by stop(). */
  storeDir?: string;
  /** More nats-server arguments, appended as given. */
  args?: string[];
  /** Default /usr/sbin/nats-server. */
  binary?: string;
  /** How long to wait for the server (and JetStream, after a crash: recovery) to answer. Default 15s. */
  readyTimeoutMs?: number;
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  /** The current process; changes on restart(). */
  readonly pid: number;
  readonly storeDir: string;
  /** Sends a signal (default SIGTERM) and waits until the process has exited; SIGKILL is a crash. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port with the same store (stopping it first if it runs). */
  restart(): Promise<void>;
  /** Terminates the server and removes the temp dir it created. */
  stop(): Promise<void>;
}

const defaultBinary = '/usr/sbin/nats-server';

function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A NATS client gets answers from JetStream: the port is open and the store has been recovered. */
async function jetStreamAnswers(url: string): Promise<boolean> {
  let nc;
  try {
    nc = await connect({ servers: url, reconnect: false, timeout: 1_000, name: 'nats-server harness' });
    const jsm = await jetstreamManager(nc, { timeout: 1_000 });
    await jsm.getAccountInfo();
    return true;
  } catch {
    return false;
  } finally {
    await nc?.close().catch(() => undefined);
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** What the server said: the start of its console (a bad flag is named first) and the end of its log. */
async function serverOutput(root: string): Promise<string> {
  const read = async (file: string) => (await readFile(join(root, file), 'utf8').catch(() => '')).trim();
  const consoleHead = (await read('console.out')).split('\n').slice(0, 5).join('\n');
  const logTail = (await read('nats-server.log')).split('\n').slice(-15).join('\n');
  return [consoleHead, logTail].filter((text) => text !== '').join('\n');
}

/** Every server still running when the test process exits is killed and its temp dir removed, so none outlives a failed suite. */
const running = new Set<ChildProcess>();
const tempRoots = new Set<string>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const root of tempRoots) rmSync(root, { recursive: true, force: true });
});

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const jetstream = options.jetstream ?? true;
  const binary = options.binary ?? defaultBinary;
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000;
  const root = await mkdtemp(join(tmpdir(), 'segment-nats-'));
  tempRoots.add(root);
  const storeDir = options.storeDir ?? join(root, 'store');
  await mkdir(storeDir, { recursive: true });
  // The server writes to files rather than pipes, so its output cannot keep a test process alive.
  const logFile = join(root, 'nats-server.log');

  let port = 0;
  let child: ChildProcess | undefined;

  const spawnServer = async (): Promise<void> => {
    const args = ['-a', '127.0.0.1', '-p', String(port), '-l', logFile];
    if (jetstream) args.push('-js', '-sd', storeDir);
    args.push(...(options.args ?? []));
    const output = openSync(join(root, 'console.out'), 'a');
    let started: ChildProcess;
    try {
      started = spawn(binary, args, { stdio: ['ignore', output, output] });
    } finally {
      closeSync(output);
    }
    // A test that forgets stop() must not hang the runner; the exit hook above still kills it.
    started.unref();
    running.add(started);
    started.once('exit', () => running.delete(started));
    const failedToSpawn = new Promise<Error>((resolve) => started.once('error', resolve));
    child = started;

    const url = `nats://127.0.0.1:${port}`;
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const spawnError = await Promise.race([failedToSpawn, sleep(0).then(() => undefined)]);
      if (spawnError) throw new Error(`cannot start ${binary}: ${spawnError.message}`);
      if (started.exitCode !== null || started.signalCode !== null) {
        throw new Error(`nats-server on port ${port} exited (${started.exitCode ?? started.signalCode}) while starting:\n${await serverOutput(root)}`);
      }
      if ((await tcpAccepts(port)) && (!jetstream || (await jetStreamAnswers(url)))) return;
      if (Date.now() > deadline) {
        started.kill('SIGKILL');
        await exited(started);
        throw new Error(`nats-server on port ${port} did not answer within ${readyTimeoutMs} ms:\n${await serverOutput(root)}`);
      }
      await sleep(50);
    }
  };

  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    current.kill(signal);
    const gone = await Promise.race([exited(current).then(() => true), sleep(10_000, undefined, { ref: false }).then(() => false)]);
    if (!gone) {
      current.kill('SIGKILL');
      await exited(current);
    }
  };

  // Another process may take the port between our probe and the server's bind: try a few ports.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await spawnServer();
      break;
    } catch (error) {
      if (attempt >= 3 || !/address already in use/i.test(String(error))) {
        await rm(root, { recursive: true, force: true });
        tempRoots.delete(root);
        throw error;
      }
    }
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid ?? -1;
    },
    storeDir,
    kill,
    async restart() {
      await kill('SIGTERM');
      await spawnServer();
    },
    async stop() {
      await kill('SIGTERM');
      await rm(root, { recursive: true, force: true });
      tempRoots.delete(root);
    },
  };
}

/**
 * A JetStream cluster of a suite's own: `size` servers routed to each other on loopback ports.
 * They start together, since none answers for JetStream until a majority has met.
 */
export async function startNatsCluster(size = 3): Promise<{ servers: NatsServer[]; stop(): Promise<void> }> {
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((port) => `nats://127.0.0.1:${port}`).join(',');
  const started = await Promise.allSettled(
    routePorts.map((port, i) =>
      startNatsServer({ args: ['--server_name', `n${i + 1}`, '--cluster_name', 'segment-test', '--cluster', `nats://127.0.0.1:${port}`, '--routes', routes], readyTimeoutMs: 30_000 }),
    ),
  );
  const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const stop = async () => void (await Promise.all(servers.map((server) => server.stop())));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { servers, stop };
}
