export * from './derivations/index.ts';
export * from './reference-model.ts';
