// The ingest gateway: HTTP POST of JSON / arrays / NDJSON and WebSocket (`json/v1`) streams of
// events into an `EventSink`, plus `/healthz` and `/readyz`.
//
//   POST /ingest/segment/events   200 {"accepted", "duplicates", "sequences"} after the stream acked
//                                 400 invalid or not JSON, 401 no/unknown token, 403 vendor outside
//                                 the token's scope, 413 body too large, 415 unknown content type,
//                                 503 publishing failed (retrying is safe: events are de-duplicated by id)
//   GET  /ingest/segment/events   WebSocket upgrade with subprotocol json/v1 (426 without an upgrade)
//   GET  /healthz, /readyz        200 when up / when the sink is ready (NATS connected), else 503
//
// A request is all-or-nothing for validation: every document is checked before the first is
// published, so nothing of a rejected request reaches the stream. A body over the limit is refused
// from its Content-Length (or `Expect: 100-continue`) before it is sent, else as soon as the bytes
// read pass the limit, and the connection is closed rather than read to its end.
//
// WebSocket (see websocket-session.ts): the valid documents of a frame are published, each invalid
// one gets an error frame {"error", "frame", "index", "errors"}; binary frames get an error frame;
// frames of one event-loop turn share an ack {"offsets", "processed"}; a frame over the limit
// closes with 1009 (acks of batches still in flight are lost: re-sending is safe, ids de-duplicate).
//
// Tokens (tokens.ts): with any configured, HTTP needs `Authorization: Bearer`, a WebSocket upgrade
// the header or `?token=`; a document for a vendor outside the token's list is refused with 403
// (HTTP, the whole request) or an error frame (WebSocket, that document).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Logger } from '@segment/telemetry';
import { bodyFormatFor, parseBody } from './body.ts';
import { checkBatch } from './documents.ts';
import { ingestPath, jsonV1Protocol, rejectionSummary, type AcceptedResponse, type ErrorResponse } from './frames.ts';
import { publishAll, type EventSink } from './sink.ts';
import { bearerToken, TokenChecker, type TokenEntry } from './tokens.ts';
import { WebSocketSession } from './websocket-session.ts';

export interface IngestServerOptions {
  readonly sink: EventSink;
  readonly logger: Logger;
  /** Configured tokens (hashes); none or empty: no authentication. */
  readonly tokens?: readonly TokenEntry[] | TokenChecker;
  /** `/readyz` answers 200 only while this is true (the app: NATS is connected). Default: always. */
  readonly ready?: () => boolean;
  /** Largest HTTP body, bytes. Default 8 MiB. */
  readonly maxBodyBytes?: number;
  /** Largest WebSocket frame (message), bytes; a larger one closes the connection with 1009. Default 1 MiB. */
  readonly maxFrameBytes?: number;
  /** Documents in flight per WebSocket before its socket is paused. Default 8,192. */
  readonly maxInFlightPerConnection?: number;
  /** How long `close()` waits for requests and WebSocket batches in flight before cutting them. Default 10 s. */
  readonly closeTimeoutMs?: number;
}

export interface IngestStats {
  /** Documents published (acknowledged, duplicates included) and rejected, HTTP and WebSocket. */
  accepted: number;
  rejected: number;
  requests: number;
  websockets: number;
}

export interface IngestServer {
  readonly server: Server;
  readonly stats: Readonly<IngestStats>;
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Stops accepting, finishes requests and WebSocket batches in flight (acks sent), closes sockets. */
  close(): Promise<void>;
}

export const defaultMaxBodyBytes = 8 * 1024 * 1024;
export const defaultMaxFrameBytes = 1024 * 1024;
// 8,192: twice the pipelined publisher's window (4,096), so the window stays full while acks of
// the previous half come back; more only grows memory and ack latency.
const defaultMaxInFlight = 8192;

const statusText: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' };

export function createIngestServer(options: IngestServerOptions): IngestServer {
  const { sink, logger } = options;
  const tokens = options.tokens instanceof TokenChecker ? options.tokens : new TokenChecker(options.tokens ?? []);
  const ready = options.ready ?? (() => true);
  const maxBodyBytes = options.maxBodyBytes ?? defaultMaxBodyBytes;
  const maxFrameBytes = options.maxFrameBytes ?? defaultMaxFrameBytes;
  const maxInFlight = options.maxInFlightPerConnection ?? defaultMaxInFlight;
  const closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
  const stats: IngestStats = { accepted: 0, rejected: 0, requests: 0, websockets: 0 };
  const sessions = new Set<WebSocketSession>();
  let closing: Promise<void> | undefined;
  let active = 0;
  let idle: (() => void) | undefined;

  const onDocuments = (accepted: number, rejected: number) => {
    stats.accepted += accepted;
    stats.rejected += rejected;
  };

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxFrameBytes,
    // Compression costs more CPU than the bandwidth it saves on a LAN at tens of thousands of events/s.
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: () => jsonV1Protocol,
  });

  async function handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const path = pathOf(req.url);
    const method = req.method ?? 'GET';
    if (path === '/healthz' || path === '/readyz') {
      if (method !== 'GET' && method !== 'HEAD') return sendJson(res, 405, { error: `${method} is not allowed on ${path}` }, { Allow: 'GET, HEAD' });
      if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
      return ready() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready', error: 'not connected to the event stream (NATS)' });
    }
    if (path !== ingestPath) return sendJson(res, 404, { error: `no such path: ${path} (events go to ${ingestPath})` });
    if (method === 'GET') return sendJson(res, 426, { error: `GET ${ingestPath} is a WebSocket endpoint: upgrade with subprotocol ${jsonV1Protocol}, or POST documents` }, { Upgrade: 'websocket', Connection: 'Upgrade' });
    if (method !== 'POST') return sendJson(res, 405, { error: `${method} is not allowed on ${ingestPath}` }, { Allow: 'POST, GET' });
    if (closing) return sendJson(res, 503, { error: 'the gateway is shutting down' }, { Connection: 'close', 'Retry-After': '1' });
    await ingest(req, res, expectsContinue);
  }

  async function ingest(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const grant = tokens.authenticate(bearerToken(req.headers.authorization));
    if (grant === undefined) {
      return sendJson(res, 401, { error: 'a valid bearer token is required (Authorization: Bearer <token>)' }, { 'WWW-Authenticate': 'Bearer realm="segment ingest"' });
    }
    const contentType = req.headers['content-type'];
    if (contentType !== undefined && bodyFormatFor(contentType, noBytes) === undefined) {
      return sendJson(res, 415, { error: `unsupported content type ${contentType}: use application/json (a document or an array) or application/x-ndjson` });
    }
    const declared = Number(req.headers['content-length']);
    if (declared > maxBodyBytes) return tooLarge(res, maxBodyBytes);
    if (expectsContinue) res.writeContinue();
    const body = await readBody(req, maxBodyBytes);
    if (body === 'too-large') return tooLarge(res, maxBodyBytes);
    if (body === 'aborted') return;
    const parsed = parseBody(bodyFormatFor(contentType, body)!, body);
    if (parsed === undefined) return sendJson(res, 400, { error: 'the body is not valid UTF-8' });
    if (!parsed.ok) {
      stats.rejected++;
      return sendJson(res, 400, { error: parsed.error });
    }
    const { accepted, invalid, forbidden } = checkBatch(parsed.items, grant);
    const total = parsed.items.length;
    if (invalid.length > 0) {
      stats.rejected += total;
      return sendJson(res, 400, { error: rejectionSummary('invalid', invalid, total), invalid } satisfies ErrorResponse);
    }
    if (forbidden.length > 0) {
      stats.rejected += total;
      return sendJson(res, 403, { error: rejectionSummary('forbidden', forbidden, total), invalid: forbidden } satisfies ErrorResponse);
    }
    // Every publish of the batch goes out before the first ack is awaited: one round trip per request.
    const { sequences, duplicates, failed, failure } = await publishAll(sink, accepted);
    if (failure !== undefined) {
      logger.warn({ failed, of: accepted.length, reason: failure.error.message }, 'publishing an ingest request failed');
      return sendJson(
        res,
        503,
        { error: `${failed} of ${accepted.length} documents could not be published (first at index ${failure.index}: ${failure.error.message}); the request can be retried: documents already stored are de-duplicated by event id` },
        { 'Retry-After': '1' },
      );
    }
    stats.accepted += accepted.length;
    sendJson(res, 200, { accepted: accepted.length, duplicates, sequences } satisfies AcceptedResponse);
  }

  function onRequest(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    stats.requests++;
    active++;
    res.once('close', () => {
      if (--active === 0) idle?.();
    });
    handle(req, res, expectsContinue).catch((error: unknown) => {
      logger.error({ err: error }, 'ingest request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  }

  const server = createServer({ requestTimeout: 60_000 }, (req, res) => onRequest(req, res, false));
  // Answer `Expect: 100-continue` ourselves: a body that is too large, or a request without a valid
  // token, is refused before the client sends a byte of it (curl expects for bodies over 1 MiB).
  server.on('checkContinue', (req, res) => onRequest(req, res, true));

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://gateway');
    if (url.pathname !== ingestPath) return refuseUpgrade(socket, 404, `no WebSocket endpoint at ${url.pathname} (use ${ingestPath})`);
    if (closing) return refuseUpgrade(socket, 503, 'the gateway is shutting down');
    // Browsers cannot set headers on a WebSocket: they may pass the token as ?token= instead.
    const grant = tokens.authenticate(bearerToken(req.headers.authorization) ?? url.searchParams.get('token') ?? undefined);
    if (grant === undefined) return refuseUpgrade(socket, 401, 'a valid bearer token is required (Authorization: Bearer <token>, or ?token=)');
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
    if (!offered.includes(jsonV1Protocol)) {
      return refuseUpgrade(socket, 400, `unsupported WebSocket subprotocol ${offered.length === 0 ? '(none)' : offered.join(', ')}: use ${jsonV1Protocol}`);
    }
    // `json/v1` is not an RFC 6455 token ('/' is a separator) and ws refuses the header with 400;
    // it is what Estuary Flow and `websocat --protocol json/v1` speak, so it is checked above and
    // swapped for a token here, and `handleProtocols` answers with `json/v1` itself.
    req.headers['sec-websocket-protocol'] = 'json-v1';
    wss.handleUpgrade(req, socket, head, (ws) => {
      stats.websockets++;
      const session = new WebSocketSession(ws, { sink, grant, logger, maxInFlight, onDocuments });
      sessions.add(session);
      void session.closed.then(() => sessions.delete(session));
      logger.debug({ remote: req.socket.remoteAddress, token: grant.name }, 'websocket connected');
    });
  });

  return {
    server,
    stats,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const deadline = AbortSignal.timeout(closeTimeoutMs);
        const requestsDone = active === 0 ? Promise.resolve() : new Promise<void>((resolve) => (idle = resolve));
        await Promise.race([Promise.all([requestsDone, ...[...sessions].map((s) => s.shutdown())]), aborted(deadline)]);
        server.closeIdleConnections();
        if (deadline.aborted) logger.warn({ requests: active, websockets: sessions.size }, 'closing with work in flight');
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function sendJson(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function tooLarge(res: ServerResponse, limit: number): void {
  // The rest of the body is not read: closing the connection is the only way to not read it.
  sendJson(res, 413, { error: `the body is larger than the limit of ${limit} bytes: send fewer documents per request` }, { Connection: 'close' });
}

const noBytes = new Uint8Array(0);

/** The body, up to `limit` bytes; past it reading stops at once ('too-large'). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (result: Buffer | 'too-large' | 'aborted') => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onAbort);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        done('too-large');
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = () => done(Buffer.concat(chunks, size));
    const onAbort = () => done('aborted');
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onAbort);
  });
}

function refuseUpgrade(socket: Duplex, status: number, error: string): void {
  const body = JSON.stringify({ error });
  const extra = status === 401 ? 'WWW-Authenticate: Bearer realm="segment ingest"\r\n' : '';
  socket.end(
    `HTTP/1.1 ${status} ${statusText[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`,
  );
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
