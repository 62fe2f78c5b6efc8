// Runs catalog tests one after another, each on its own engine, and reports as each finishes.
import { collections, formatFieldError, validators } from '@segment/model';
import type { CatalogStep, CatalogTest } from './catalog-format.ts';
import type { Engine, EngineFactory } from './engine.ts';
import { matchDocuments } from './match.ts';

export interface TestResult {
  name: string;
  passed: boolean;
  /** Why it failed: the step and the mismatch, or the error thrown. */
  error?: string;
  durationMs: number;
}

export interface CatalogRun {
  passed: number;
  failed: number;
  results: TestResult[];
}

/** Runs tests sequentially; `onResult` hears each result as soon as its test ends. */
export async function runCatalog(
  tests: readonly CatalogTest[],
  createEngine: EngineFactory,
  onResult: (result: TestResult) => void = () => {},
): Promise<CatalogRun> {
  const results: TestResult[] = [];
  for (const test of tests) {
    const result = await runTest(test, createEngine);
    results.push(result);
    onResult(result);
  }
  const passed = results.filter((result) => result.passed).length;
  return { passed, failed: results.length - passed, results };
}

async function runTest(test: CatalogTest, createEngine: EngineFactory): Promise<TestResult> {
  const started = performance.now();
  let error: string | undefined;
  let engine: Engine | undefined;
  try {
    engine = await createEngine(test.name);
  } catch (thrown) {
    error = `creating the engine: ${messageOf(thrown)}`;
  }
  if (engine) {
    for (const [index, step] of test.steps.entries()) {
      error = await runStep(step, engine, index);
      if (error !== undefined) break;
    }
    try {
      await engine.close();
    } catch (thrown) {
      error ??= `closing the engine: ${messageOf(thrown)}`;
    }
  }
  const durationMs = performance.now() - started;
  return error === undefined ? { name: test.name, passed: true, durationMs } : { name: test.name, passed: false, error, durationMs };
}

/** Runs one step; returns why it failed, or undefined. */
async function runStep(step: CatalogStep, engine: Engine, index: number): Promise<string | undefined> {
  const label = `step ${index + 1} (${step.kind} ${step.collection})`;
  try {
    if (step.kind === 'ingest') {
      const invalid = invalidDocuments(step);
      if (invalid.length > 0) return `${label}: invalid documents\n${invalid.join('\n')}`;
      await engine.ingest(step.collection, step.documents);
      return undefined;
    }
    const mismatch = matchDocuments(step.documents, await engine.read(step.collection));
    return mismatch ? `${label}: ${mismatch.text}` : undefined;
  } catch (thrown) {
    return `${label}: ${messageOf(thrown)}`;
  }
}

/** Checks ingested documents against their collection's schema, as the ingest gateway would. */
function invalidDocuments(step: CatalogStep): string[] {
  const validator = validators[collections[step.collection].schema];
  return step.documents.flatMap((document, i) => {
    const checked = validator.check(document);
    return checked.ok ? [] : [`  document ${i}: ${checked.errors.map(formatFieldError).join('; ')}`];
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `name: PASSED`, or `name: FAILED` followed by the reason, indented. */
export function formatResultLine(result: TestResult): string {
  if (result.passed) return `${result.name}: PASSED`;
  return `${result.name}: FAILED\n${(result.error ?? 'no reason given').replace(/^/gm, '    ')}`;
}

/** The last line of a run: `N passed, N failed`. */
export function formatSummary(run: Pick<CatalogRun, 'passed' | 'failed'>): string {
  return `${run.passed} passed, ${run.failed} failed`;
}
