export * from './schema-types.generated.ts';
export * from './schemas.ts';
export * from './validation.ts';
export * from './order.ts';
export * from './collections.ts';
