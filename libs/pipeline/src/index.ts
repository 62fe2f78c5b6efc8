export * from './pipeline.ts';
export * from './projectors.ts';
export * from './progress.ts';
export * from './catalog-engine.ts';
