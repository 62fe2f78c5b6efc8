// NDJSON bodies to the gateway over keep-alive connections (node:http: no dependency, and one
// socket per request in flight is exactly what a batch client does).
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface IngestClient {
  /** Posts one NDJSON body; resolves once the gateway answered 200 (events stored in JetStream). */
  post(body: Buffer | string): Promise<void>;
  /** GET /readyz answers 200. */
  ready(): Promise<boolean>;
  close(): void;
}

const ingestPath = '/ingest/segment/events';
/** A 503 (NATS briefly unavailable) is retried: documents already stored are de-duplicated by id. */
const maxAttempts = 5;

function send(agent: Agent, port: number, method: string, path: string, body?: Buffer | string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: '127.0.0.1', port, method, path, headers: body === undefined ? {} : { 'Content-Type': 'application/x-ndjson', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function createIngestClient(port: number, connections: number): IngestClient {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  return {
    async post(body) {
      for (let attempt = 1; ; attempt++) {
        const { status, text } = await send(agent, port, 'POST', ingestPath, body);
        if (status === 200) return;
        if (status !== 503 || attempt >= maxAttempts) throw new Error(`POST ${ingestPath} answered ${status}: ${text.slice(0, 500)}`);
        await sleep(250 * attempt);
      }
    },
    async ready() {
      try {
        return (await send(agent, port, 'GET', '/readyz')).status === 200;
      } catch {
        return false;
      }
    },
    close: () => agent.destroy(),
  };
}
