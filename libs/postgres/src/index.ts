export * from './database.ts';
export * from './migrations.ts';
export * from './projections.ts';
export * from './projection-store.ts';
export * from './queries.ts';
export * from './statistics.ts';
export type * from './tables.ts';
