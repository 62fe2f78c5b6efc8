// Compiles a JSON Schema's `reduce` annotations into a tree of reducers, once per schema, the way
// estuary/flow reads strategies from schemas: reductions are data, not code per document type.
import { compareByKey, compareInstants, compareJson, type Schema } from '@segment/model';

export type Strategy = 'lastWriteWins' | 'firstWriteWins' | 'merge' | 'minimize' | 'maximize' | 'append' | 'sum';

/** The reduction to apply at one location of a document, with those of its children. */
export interface ReduceNode {
  strategy: Strategy;
  /** Pointers that order and identify array items (`merge`), or that compare values (`minimize`/`maximize`). */
  key: readonly string[] | undefined;
  /** Values are RFC 3339 date-times and compare as instants. */
  dateTime: boolean;
  properties: Map<string, ReduceNode>;
  additionalProperties: ReduceNode | undefined;
  items: ReduceNode | undefined;
}

export interface CompileOptions {
  /** Schema documents by `$id`, for `$ref`s that leave the schema being compiled. */
  documents?: ReadonlyMap<string, Schema>;
}

type SchemaObject = { readonly [keyword: string]: unknown };

/** The default at every location, objects included: the right side replaces the left. */
export const lastWriteWins: ReduceNode = Object.freeze({
  strategy: 'lastWriteWins',
  key: undefined,
  dateTime: false,
  properties: new Map(),
  additionalProperties: undefined,
  items: undefined,
}) as ReduceNode;

/** Builds the reduce tree of a schema; `$ref` (within or across documents) and `allOf` are followed. */
export function compileReduceTree(schema: Schema, options: CompileOptions = {}): ReduceNode {
  const documents = options.documents ?? new Map<string, Schema>();
  const rootBase = typeof schema === 'object' && typeof schema.$id === 'string' ? schema.$id : 'segment:root';

  function resolve(ref: string, base: string, root: Schema): { schema: Schema; base: string; root: Schema } {
    const url = new URL(ref, base);
    const pointer = decodeURIComponent(url.hash.slice(1));
    url.hash = '';
    const documentId = url.href;
    const document = documentId === stripHash(base) ? root : documents.get(documentId);
    if (document === undefined) throw new Error(`reduce: cannot resolve $ref "${ref}" from ${base}`);
    let target: unknown = document;
    for (const token of pointer.split('/').slice(1)) {
      target = (target as SchemaObject | undefined)?.[token.replaceAll('~1', '/').replaceAll('~0', '~')];
    }
    if (target === undefined) throw new Error(`reduce: $ref "${ref}" points at nothing`);
    return { schema: target as Schema, base: documentId, root: document };
  }

  /** Gathers the keywords that bear on reduction from a schema, its `$ref` and its `allOf` branches. */
  function compile(schema: Schema, base: string, root: Schema): { node: ReduceNode; annotated: boolean } {
    if (typeof schema !== 'object') return { node: lastWriteWins, annotated: false };
    if (typeof schema.$id === 'string') {
      base = new URL(schema.$id, base).href;
      root = schema;
    }
    const node: ReduceNode = { ...lastWriteWins, properties: new Map() };
    let annotated = false;
    // Later sources win: the `$ref`, then each `allOf` branch, then the schema's own keywords.
    const absorb = (other: { node: ReduceNode; annotated: boolean }) => {
      if (other.annotated) {
        node.strategy = other.node.strategy;
        node.key = other.node.key;
        annotated = true;
      }
      node.dateTime ||= other.node.dateTime;
      for (const [name, child] of other.node.properties) node.properties.set(name, child);
      node.additionalProperties = other.node.additionalProperties ?? node.additionalProperties;
      node.items = other.node.items ?? node.items;
    };
    if (typeof schema.$ref === 'string') {
      const target = resolve(schema.$ref, base, root);
      absorb(compile(target.schema, target.base, target.root));
    }
    for (const branch of Array.isArray(schema.allOf) ? (schema.allOf as Schema[]) : []) absorb(compile(branch, base, root));
    const reduce = schema.reduce as { strategy: Strategy; key?: string[] } | undefined;
    if (reduce) {
      node.strategy = reduce.strategy;
      node.key = reduce.key;
      annotated = true;
    }
    if (schema.format === 'date-time') node.dateTime = true;
    if (schema.properties && typeof schema.properties === 'object') {
      for (const [name, child] of Object.entries(schema.properties as Record<string, Schema>)) {
        node.properties.set(name, compile(child, base, root).node);
      }
    }
    if (typeof schema.additionalProperties === 'object') {
      node.additionalProperties = compile(schema.additionalProperties as Schema, base, root).node;
    }
    if (typeof schema.items === 'object') node.items = compile(schema.items as Schema, base, root).node;
    return { node, annotated };
  }

  return compile(schema, rootBase, schema).node;
}

function stripHash(uri: string): string {
  const at = uri.indexOf('#');
  return at < 0 ? uri : uri.slice(0, at);
}

/** Compares two values as the node says: by key pointers, as instants, or in JSON order. */
export function compareAt(node: ReduceNode, a: unknown, b: unknown): number {
  if (node.key) return compareByKey(node.key, a, b);
  if (node.dateTime && typeof a === 'string' && typeof b === 'string') return compareInstants(a, b);
  return compareJson(a, b);
}
