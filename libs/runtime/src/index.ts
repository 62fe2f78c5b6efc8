export * from './ports.ts';
export { Combiner } from './combiner.ts';
export { RegisterCache, WrittenRegisters, defaultRegisterMemory, keyId } from './register-cache.ts';
export { PartitionProcessor, LambdaError, type CommitPolicy, type PartitionProcessorOptions } from './partition-processor.ts';
export * from './memory-ports.ts';
export * from './derive-worker.ts';
export { PartitionFeed, type MessageSource } from './partition-feed.ts';
export { Projector, type ProjectorOptions, type ProjectorStats, type DerivedMessage } from './projector.ts';
export { BloomFilter } from './bloom-filter.ts';
