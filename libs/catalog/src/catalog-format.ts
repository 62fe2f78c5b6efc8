// The catalog-test format (shared/catalog/segment.tests.yaml): YAML in, plain test steps out.
// Errors name the file, the test and the step (counted from 1) so a broken file is fixed at a glance.
import { parseDocument } from 'yaml';
import { collections, isCollectionName, type CollectionName } from '@segment/model';

export type StepKind = 'ingest' | 'verify';

/** One step: publish documents to a collection, or read it and match them as subsets. */
export interface CatalogStep {
  kind: StepKind;
  collection: CollectionName;
  documents: unknown[];
}

export interface CatalogTest {
  name: string;
  steps: CatalogStep[];
}

export class CatalogFormatError extends Error {
  readonly code = 'SEGMENT_CATALOG_FORMAT';
  constructor(message: string) {
    super(message);
    this.name = 'CatalogFormatError';
  }
}

const stepKinds: readonly StepKind[] = ['ingest', 'verify'];

/** Parses a catalog file's text; `source` (a path or name) only labels errors. Anchors and aliases resolve. */
export function parseCatalog(yamlText: string, source: string): CatalogTest[] {
  const document = parseDocument(yamlText);
  const problem = document.errors[0];
  if (problem) throw new CatalogFormatError(`${source}: not valid YAML: ${problem.message}`);
  const root: unknown = document.toJS();

  if (!isPlainObject(root) || !Object.hasOwn(root, 'tests')) {
    throw new CatalogFormatError(`${source}: expected a mapping with a "tests" key at the top level`);
  }
  const extra = Object.keys(root).filter((key) => key !== 'tests');
  if (extra.length > 0) throw new CatalogFormatError(`${source}: unknown top-level key ${quoteAll(extra)}; only "tests" is allowed`);
  if (!isPlainObject(root.tests)) throw new CatalogFormatError(`${source}: "tests" must be a mapping of test name to steps`);

  return Object.entries(root.tests).map(([name, steps]) => {
    const where = `${source}: test ${JSON.stringify(name)}`;
    if (!Array.isArray(steps)) throw new CatalogFormatError(`${where}: steps must be a list`);
    return { name, steps: steps.map((step, index) => parseStep(step, `${where}, step ${index + 1}`)) };
  });
}

function parseStep(step: unknown, where: string): CatalogStep {
  if (!isPlainObject(step)) throw new CatalogFormatError(`${where}: expected a mapping like "ingest: {...}" or "verify: {...}"`);
  const keys = Object.keys(step);
  if (keys.length !== 1) throw new CatalogFormatError(`${where}: expected exactly one of "ingest" or "verify", got ${quoteAll(keys) || 'nothing'}`);
  const kind = keys[0]!;
  if (!isStepKind(kind)) throw new CatalogFormatError(`${where}: unknown step ${JSON.stringify(kind)} (expected "ingest" or "verify")`);

  const body = step[kind];
  const label = `${where} (${kind})`;
  if (!isPlainObject(body)) throw new CatalogFormatError(`${label}: expected a mapping with "collection" and "documents"`);
  const unknown = Object.keys(body).filter((key) => key !== 'collection' && key !== 'documents');
  if (unknown.length > 0) throw new CatalogFormatError(`${label}: unknown key ${quoteAll(unknown)}; only "collection" and "documents" are allowed`);

  const { collection, documents } = body;
  if (typeof collection !== 'string') throw new CatalogFormatError(`${label}: "collection" must be a collection name`);
  if (!isCollectionName(collection)) {
    throw new CatalogFormatError(`${label}: unknown collection ${JSON.stringify(collection)} (known: ${Object.keys(collections).join(', ')})`);
  }
  if (!Array.isArray(documents)) {
    throw new CatalogFormatError(`${label}: "documents" must be a list (use "documents: []" for none)`);
  }
  return { kind, collection, documents };
}

function isStepKind(key: string): key is StepKind {
  return (stepKinds as readonly string[]).includes(key);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function quoteAll(keys: readonly string[]): string {
  return keys.map((key) => JSON.stringify(key)).join(', ');
}
