export * from './body.ts';
export * from './documents.ts';
export * from './tokens.ts';
export * from './frames.ts';
export * from './sink.ts';
export * from './websocket-session.ts';
export * from './ingest-server.ts';
export * from './json-v1-client.ts';
