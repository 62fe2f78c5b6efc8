// The local services of `segment develop`: use the NATS and Postgres that are running, or start
// what a newcomer's machine can (a nats-server on a free loopback port, an embedded PGlite), with
// their state under the project's `.segment/` folder. Anything else: a clear message of what to install.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, openSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import type { Logger } from '@segment/telemetry';

export interface LocalService {
  /** The URL to use: the one configured, or the one of what was started. */
  readonly url: string;
  /** What was done, for the start-up banner, e.g. "started nats-server on 127.0.0.1:40123". */
  readonly description: string;
  stop(): Promise<void>;
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function accepts(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

/** Finds an executable on PATH (and in /usr/sbin, where Debian puts nats-server). */
export function findExecutable(name: string, path: string): string | undefined {
  for (const dir of [...path.split(delimiter), '/usr/sbin', '/usr/local/sbin']) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export async function resolveNats(url: string, options: { stateDir: string; logger: Logger; /** The PATH to look for nats-server on. */ path: string }): Promise<LocalService> {
  const first = new URL(url.split(',')[0]!.trim());
  if (await accepts(first.hostname, Number(first.port || 4222), 1000)) {
    return { url, description: `using NATS at ${url}`, stop: async () => undefined };
  }
  const binary = findExecutable('nats-server', options.path);
  if (!binary) {
    throw new Error(
      `no NATS server answers at ${url}, and nats-server is not installed to start one.\n` +
        `Install it (Debian/Ubuntu: apt-get install nats-server; or https://nats.io/download) or point --nats / SEGMENT_NATS_URL at a running server with JetStream.`,
    );
  }
  const storeDir = join(options.stateDir, 'nats');
  mkdirSync(storeDir, { recursive: true });
  const port = await freePort();
  const log = openSync(join(options.stateDir, 'nats-server.log'), 'a');
  const child: ChildProcess = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: ['ignore', log, log] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Ours alone: it must not outlive this process, however this process ends (short of SIGKILL).
  const killOnExit = () => child.kill('SIGTERM');
  process.once('exit', killOnExit);
  for (let i = 0; i < 100 && !(await accepts('127.0.0.1', port, 200)); i++) {
    if (child.exitCode !== null) throw new Error(`nats-server exited at start (code ${child.exitCode}); see ${join(options.stateDir, 'nats-server.log')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  options.logger.info({ port, storeDir }, 'started nats-server');
  return {
    url: `nats://127.0.0.1:${port}`,
    description: `started nats-server on 127.0.0.1:${port} (store ${storeDir})`,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function resolvePostgres(url: string, options: { stateDir: string }): Promise<LocalService> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  let connected = false;
  try {
    await client.connect();
    connected = true;
    await client.query('SELECT 1');
    return { url, description: `using Postgres at ${url.replace(/\/\/[^@/]*@/, '//')}`, stop: async () => undefined };
  } catch {
    const dir = join(options.stateDir, 'pglite');
    mkdirSync(dir, { recursive: true });
    return {
      url: `pglite:${dir}`,
      description: `no Postgres at ${url.replace(/\/\/[^@/]*@/, '//')}: using an embedded PGlite database in ${dir} (set SEGMENT_DATABASE_URL to use a server)`,
      stop: async () => undefined,
    };
  } finally {
    // end() on a client that never connected can wait forever.
    if (connected) await client.end().catch(() => undefined);
  }
}
