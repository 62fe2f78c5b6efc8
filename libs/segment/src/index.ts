export * from './derivations/index.ts';
export * from './reference-model.ts';
export * from './generator/index.ts';
