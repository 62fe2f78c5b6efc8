// The ingest gateway: connect → provision → pipelined publisher → HTTP/WebSocket server → on
// shutdown stop accepting, finish requests and WebSocket batches in flight, close the publisher,
// drain NATS.
import { readFile } from 'node:fs/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import type { SegmentConfig } from '@segment/config';
import { createIngestServer, parseTokenEntries, type EventSink, type IngestStats, type TokenEntry } from '@segment/ingest';
import type { Event } from '@segment/model';
import { connectNats, defaultProvisionConfig, namesFor, PipelinedPublisher, provision, type Names } from '@segment/nats';
import type { Logger } from '@segment/telemetry';

export interface IngestServerSettings {
  /** TCP port; 0 picks a free one (see the returned `port`). */
  port: number;
  /** Interface to listen on; default 127.0.0.1 (pass 0.0.0.0 in a container). */
  host?: string;
  /** Token hashes; none: no authentication. */
  tokens?: readonly TokenEntry[];
  /** Largest HTTP body in bytes (default 8 MiB). */
  maxBodyBytes?: number;
  /** Largest WebSocket frame in bytes (default 1 MiB). */
  maxFrameBytes?: number;
}

export interface StartIngestOptions extends IngestServerSettings {
  nc: NatsConnection;
  names: Names;
  logger: Logger;
}

export interface IngestServerHandle {
  readonly port: number;
  readonly stats: Readonly<IngestStats>;
  /** Stops accepting, finishes what is in flight, closes the publisher (the connection stays open). */
  close(): Promise<void>;
}

/** The JetStream sink: subject per vendor, Nats-Msg-Id = event id, pipelined. */
export function natsEventSink(publisher: PipelinedPublisher, names: Names): EventSink {
  const subjectOf = (event: Event) => names.events.subject(event.segment.vendor);
  return {
    subjectOf,
    // The client's bytes when there are some (an NDJSON line: no second encoding); else a Buffer, not
    // the string: nats.js would encode a string with a TextEncoder, a new ArrayBuffer per event, where
    // Buffer.from takes small ones from a shared pool (0.2 µs against 0.4–1.2).
    publish: (event, source, settled) => publisher.send(subjectOf(event), source ?? Buffer.from(JSON.stringify(event)), { msgId: event.event }, settled),
  };
}

/** Serves ingestion over an open NATS connection whose streams are provisioned; `segment develop` embeds this. */
export async function startIngestServer({ nc, names, logger, port, host = '127.0.0.1', tokens, maxBodyBytes, maxFrameBytes }: StartIngestOptions): Promise<IngestServerHandle> {
  const publisher = new PipelinedPublisher(nc);
  const connected = watchConnection(nc, logger);
  const gateway = createIngestServer({ sink: natsEventSink(publisher, names), logger, tokens, maxBodyBytes, maxFrameBytes, ready: connected });
  let address;
  try {
    address = await gateway.listen(port, host);
  } catch (error) {
    await publisher.close();
    throw error;
  }
  return {
    port: address.port,
    stats: gateway.stats,
    async close() {
      await gateway.close();
      await publisher.close();
    },
  };
}

/** Reads a tokens file: `[{"tokenSha256": "<hex>", "vendors"?: [..], "name"?: ".."}]`. */
export async function loadTokensFile(path: string): Promise<TokenEntry[]> {
  const text = await readFile(path, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`tokens file ${path} is not JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  try {
    return parseTokenEntries(json);
  } catch (error) {
    throw new Error(`tokens file ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

export interface IngestAppOptions extends Omit<IngestServerSettings, 'tokens'> {
  config: SegmentConfig;
  logger: Logger;
  /** Aborted on SIGTERM/SIGINT. */
  signal: AbortSignal;
  /** A JSON tokens file (see `loadTokensFile`); read once at start. */
  tokensFile?: string;
  tokens?: readonly TokenEntry[];
  /** Called once the server listens, with the bound port. */
  onListening?: (port: number) => void;
}

export async function runIngest({ config, logger, signal, tokensFile, tokens, onListening, ...settings }: IngestAppOptions): Promise<void> {
  const tokenList = tokensFile === undefined ? tokens : [...(tokens ?? []), ...(await loadTokensFile(tokensFile))];
  const names = namesFor(config.namespace);
  const nc = await connectNats({ servers: config.natsUrl, name: 'segment-ingest' });
  try {
    await provision(nc, names, { ...defaultProvisionConfig, replicas: config.replicas }, logger, { existing: 'keep' });
    const handle = await startIngestServer({ ...settings, nc, names, logger, tokens: tokenList });
    logger.info({ port: handle.port, host: settings.host ?? '127.0.0.1', namespace: config.namespace, tokens: tokenList?.length ?? 0 }, 'ingesting');
    onListening?.(handle.port);
    const statsTimer = setInterval(() => logger.debug({ ...handle.stats }, 'ingest stats'), 10_000);
    statsTimer.unref();
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    clearInterval(statsTimer);
    logger.info({ ...handle.stats }, 'draining');
    await handle.close();
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}

/** Whether the connection is up, following its status events (for `/readyz`). */
function watchConnection(nc: NatsConnection, logger: Logger): () => boolean {
  let connected = true;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnecting') {
        if (connected) logger.warn({ status: status.type }, 'NATS disconnected; not ready');
        connected = false;
      } else if (status.type === 'reconnect') {
        connected = true;
        logger.info({ server: status.server }, 'NATS reconnected; ready');
      }
    }
  })().catch(() => undefined);
  return () => connected && !nc.isClosed();
}
