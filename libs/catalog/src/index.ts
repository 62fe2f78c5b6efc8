export * from './catalog-format.ts';
export * from './match.ts';
export * from './engine.ts';
export * from './runner.ts';
export * from './memory-engine.ts';
