export { createDeriveRuntime, type DeriveRuntimeOptions, type RegisterConnections, type RegisterMemory } from './derive-runtime.ts';
export { KvRegisterStore } from './kv-register-store.ts';
export { KvCheckpointStore } from './kv-checkpoint-store.ts';
export { StreamOutputSink, StreamDeadLetterSink, toNdjson, maxOutputBytes, parseNdjson, decodeDerivedMessage } from './stream-output-sink.ts';
export { StreamPartitions, openDurableSource, type DurableSourceOptions } from './stream-partitions.ts';
export { deriveProgress, derivePendingEvents, caughtUp, type PartitionProgress } from './progress.ts';
