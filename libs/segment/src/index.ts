export * from './derivations/index.ts';
