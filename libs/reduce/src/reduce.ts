import { compareByKey, schemaDocuments, schemaOf, type Documents, type Schema, type SchemaName } from '@segment/model';
import { compareAt, compileReduceTree, lastWriteWins, type CompileOptions, type ReduceNode } from './compile.ts';

/** Reduces `right` into `left` (both documents of one key, left written first); neither input is modified. */
export type Reduction<T> = (left: T | undefined, right: T) => T;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Applies a node's strategy; `undefined` on the left means "nothing yet". */
export function reduceAt(node: ReduceNode, left: unknown, right: unknown): unknown {
  if (left === undefined) return right;
  if (right === undefined) return left;
  switch (node.strategy) {
    case 'lastWriteWins':
      return right;
    case 'firstWriteWins':
      return left;
    case 'minimize':
      return compareAt(node, right, left) < 0 ? right : left;
    case 'maximize':
      return compareAt(node, right, left) > 0 ? right : left;
    case 'sum':
      return typeof left === 'number' && typeof right === 'number' ? left + right : right;
    case 'append':
      return Array.isArray(left) && Array.isArray(right) ? [...left, ...right] : right;
    case 'merge':
      if (isPlainObject(left) && isPlainObject(right)) return mergeObjects(node, left, right);
      if (Array.isArray(left) && Array.isArray(right)) {
        return node.key ? mergeKeyedArrays(node, left, right) : mergeArraysByIndex(node, left, right);
      }
      return right;
  }
}

function childOf(node: ReduceNode, property: string): ReduceNode | undefined {
  return node.properties.get(property) ?? node.additionalProperties;
}

/** Per property: a property absent on the right never erases the left; `null` is a value like any other. */
function mergeObjects(node: ReduceNode, left: Record<string, unknown>, right: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...left };
  for (const property in right) {
    const value = right[property];
    if (value === undefined) continue;
    out[property] = property in left ? reduceAt(childOf(node, property) ?? lastWriteWins, left[property], value) : value;
  }
  return out;
}

/** Both sides are sorted and unique by the key; the result is their sorted merge, equal keys reduced deeply. */
function mergeKeyedArrays(node: ReduceNode, left: unknown[], right: unknown[]): unknown[] {
  const key = node.key!;
  const items = node.items ?? lastWriteWins;
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length && j < right.length) {
    const order = compareByKey(key, left[i], right[j]);
    if (order < 0) out.push(left[i++]);
    else if (order > 0) out.push(right[j++]);
    else out.push(reduceAt(items, left[i++], right[j++]));
  }
  while (i < left.length) out.push(left[i++]);
  while (j < right.length) out.push(right[j++]);
  return out;
}

function mergeArraysByIndex(node: ReduceNode, left: unknown[], right: unknown[]): unknown[] {
  const items = node.items ?? lastWriteWins;
  const out = left.slice();
  right.forEach((value, index) => {
    out[index] = reduceAt(items, left[index], value);
  });
  return out;
}

const compiledSchemas = new WeakMap<object, ReduceNode>();

/** Compiles (once per schema object) the reduction a schema's annotations describe. */
export function compileReduction<T>(schema: Schema, options: CompileOptions = { documents: schemaDocuments }): Reduction<T> {
  const node = treeOf(schema, options);
  return (left, right) => reduceAt(node, left, right) as T;
}

function treeOf(schema: Schema, options: CompileOptions): ReduceNode {
  if (typeof schema !== 'object') return lastWriteWins;
  let node = compiledSchemas.get(schema);
  if (!node) {
    node = compileReduceTree(schema, options);
    compiledSchemas.set(schema, node);
  }
  return node;
}

/** `reduce(schema, left, right)`: the one reduction of Segment, driven by the schema's `reduce` annotations. */
export function reduce<T>(schema: Schema, left: T | undefined, right: T, options: CompileOptions = { documents: schemaDocuments }): T {
  return reduceAt(treeOf(schema, options), left, right) as T;
}

const namedReductions = new Map<SchemaName, Reduction<unknown>>();

/** The reduction of one of Segment's named schemas (membership, profile, toggleRegister...). */
export function reductionOf<N extends SchemaName>(name: N): Reduction<Documents[N]> {
  let reduction = namedReductions.get(name);
  if (!reduction) {
    reduction = compileReduction(schemaOf(name));
    namedReductions.set(name, reduction);
  }
  return reduction as Reduction<Documents[N]>;
}
