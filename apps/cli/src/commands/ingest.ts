import { loadConfig } from '@segment/config';
import { createLogger } from '@segment/telemetry';
import { runIngest } from '@segment/app-ingest';
import { integerFlag, parseCommandArgs, shutdownSignal, type Command } from '../command.ts';

const usage = `usage: segment ingest [options]

Runs the ingest gateway: events in over HTTP and WebSocket, validated, published to the events
stream (subject per vendor, Nats-Msg-Id = event id). Runs setup first. SIGTERM or Ctrl-C stops
accepting, finishes the requests in flight and exits 0.

  POST /ingest/segment/events   a JSON document, a JSON array, or NDJSON (application/x-ndjson)
                                200 {"accepted","duplicates","sequences"} once stored; 400 lists
                                every invalid document by index; nothing of a rejected request
                                is published. An NDJSON line is stored as sent (its bytes, as
                                \`segment publish\` stores them), other documents as JSON.
  GET  /ingest/segment/events   WebSocket, subprotocol json/v1: text frames of whitespace-separated
                                documents, answered with {"offsets","processed"} acks
  GET  /healthz, /readyz        up / connected to NATS

  segment generate | websocat --protocol json/v1 ws://localhost:8080/ingest/segment/events

options:
  --port N               TCP port (env SEGMENT_INGEST_PORT, default 8080)
  --host ADDR            interface to listen on (env SEGMENT_INGEST_HOST, default 127.0.0.1)
  --nats URL             NATS servers (env SEGMENT_NATS_URL, default nats://127.0.0.1:4222)
  --namespace NAME       streams namespace (env SEGMENT_NAMESPACE, default segment)
  --tokens FILE          bearer tokens, JSON [{"tokenSha256": "<hex>", "vendors"?: [1, 2]}]
                         (env SEGMENT_INGEST_TOKENS_FILE; none: no authentication).
                         Hash a token with: printf %s "$TOKEN" | sha256sum
  --max-body BYTES       largest HTTP body (env SEGMENT_INGEST_MAX_BODY, default 8388608); 413 above
  --max-frame BYTES      largest WebSocket frame (env SEGMENT_INGEST_MAX_FRAME, default 1048576);
                         the connection closes with 1009 above
  --log-level LEVEL      pino level (env SEGMENT_LOG_LEVEL, default info)`;


export const command: Command = {
  async run(args) {
    const { values } = parseCommandArgs(
      args,
      {
        port: { type: 'string' },
        host: { type: 'string' },
        nats: { type: 'string' },
        namespace: { type: 'string' },
        tokens: { type: 'string' },
        'max-body': { type: 'string' },
        'max-frame': { type: 'string' },
        'log-level': { type: 'string' },
      },
      usage,
    );
    const env = process.env;
    const config = loadConfig(env, { natsUrl: values.nats, namespace: values.namespace, logLevel: values['log-level'] });
    const port = integerFlag('port', values.port ?? env.SEGMENT_INGEST_PORT, 8080, 0, 65535);
    const maxBody = values['max-body'] ?? env.SEGMENT_INGEST_MAX_BODY;
    const maxFrame = values['max-frame'] ?? env.SEGMENT_INGEST_MAX_FRAME;
    const logger = createLogger({ name: 'ingest', level: config.logLevel });
    const signal = shutdownSignal((name) => logger.info({ signal: name }, 'shutting down'));
    await runIngest({
      config,
      logger,
      signal,
      port,
      host: values.host ?? (env.SEGMENT_INGEST_HOST || undefined),
      tokensFile: values.tokens ?? (env.SEGMENT_INGEST_TOKENS_FILE || undefined),
      maxBodyBytes: maxBody === undefined ? undefined : integerFlag('max-body', maxBody, 0, 1),
      maxFrameBytes: maxFrame === undefined ? undefined : integerFlag('max-frame', maxFrame, 0, 1),
    });
    logger.flush();
    return 0;
  },
};
