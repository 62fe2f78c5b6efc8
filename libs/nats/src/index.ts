export * from './names.ts';
export * from './kv-keys.ts';
export * from './connect.ts';
export * from './provision.ts';
export * from './derive/index.ts';
export * from './publisher.ts';
export * from './read-stream.ts';
