// A WebSocket client for the gateway's `json/v1` subprotocol, for tests, benchmarks and tools.
// Neither `ws` nor the WHATWG WebSocket will send `json/v1` (a '/' is not allowed in a
// subprotocol token), so the handshake is done here with node:http and the upgraded socket is
// handed to a `ws` WebSocket, which then frames, masks and closes as any client does.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { jsonV1Protocol } from './frames.ts';

const handshakeGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The server refused the upgrade: its HTTP status and body. */
export class UpgradeRefusedError extends Error {
  readonly code = 'SEGMENT_INGEST_UPGRADE_REFUSED';
  readonly status: number;
  readonly body: string;
  constructor(status: number, body: string) {
    super(`the server refused the WebSocket upgrade: ${status} ${body}`);
    this.name = 'UpgradeRefusedError';
    this.status = status;
    this.body = body;
  }
}

export interface JsonV1ClientOptions {
  headers?: Record<string, string>;
  /** The subprotocol(s) to offer; default `json/v1`. */
  protocol?: string;
}

/** Opens a WebSocket to `url` (ws://) offering `json/v1`; rejects with `UpgradeRefusedError` when refused. */
export function connectJsonV1(url: string, options: JsonV1ClientOptions = {}): Promise<WebSocket> {
  const target = new URL(url);
  const protocol = options.protocol ?? jsonV1Protocol;
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    const req = request({
      host: target.hostname,
      port: target.port || 80,
      path: `${target.pathname}${target.search}`,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': key,
        ...(protocol === '' ? {} : { 'Sec-WebSocket-Protocol': protocol }),
        ...options.headers,
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => reject(new UpgradeRefusedError(res.statusCode ?? 0, body)));
    });
    req.on('upgrade', (res, socket: Socket, head: Buffer) => {
      const accept = createHash('sha1').update(key + handshakeGuid).digest('base64');
      const chosen = res.headers['sec-websocket-protocol'];
      if (res.headers['sec-websocket-accept'] !== accept || (chosen !== undefined && !protocol.split(',').map((p) => p.trim()).includes(chosen))) {
        socket.destroy();
        reject(new Error(`bad WebSocket handshake answer (protocol ${chosen})`));
        return;
      }
      // ws's server-side constructor and `setSocket`, switched to the client role (masked frames).
      const ws = new (WebSocket as unknown as new (address: null, protocols: undefined, options: object) => WebSocket)(null, undefined, {});
      const internals = ws as unknown as { _isServer: boolean; _protocol: string; setSocket(socket: Socket, head: Buffer, options: object): void };
      internals._isServer = false;
      internals._protocol = chosen ?? '';
      internals.setSocket(socket, head, { allowSynchronousEvents: true });
      resolve(ws);
    });
    req.end();
  });
}
