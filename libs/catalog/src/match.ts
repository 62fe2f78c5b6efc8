// The catalog's matching rule: same number of documents, and each expected document a subset of
// the actual one at the same position. Arrays are not subsets: same length, element by element.

/** The first difference found. `path` is `[i]` then a JSON pointer into document i; empty for a count mismatch. */
export interface Mismatch {
  path: string;
  expected: unknown;
  actual: unknown;
  /** A readable, multi-line account of the difference. */
  text: string;
}

/** Null when `actual` matches `expected` under the catalog rules, else the first mismatch. */
export function matchDocuments(expected: readonly unknown[], actual: readonly unknown[]): Mismatch | null {
  if (expected.length !== actual.length) {
    return {
      path: '',
      expected: expected.length,
      actual: actual.length,
      text: [
        `expected ${plural(expected.length, 'document')}, actual ${plural(actual.length, 'document')}`,
        'expected (subsets):',
        ...listDocuments(expected),
        'actual:',
        ...listDocuments(actual),
      ].join('\n'),
    };
  }
  for (let index = 0; index < expected.length; index++) {
    const found = findMismatch(expected[index], actual[index], '');
    if (found) {
      const path = `[${index}]${found.pointer}`;
      return {
        path,
        expected: found.expected,
        actual: found.actual,
        text: [
          `${path}: ${found.reason}`,
          `expected [${index}] (subset):`,
          indent(json(expected[index])),
          `actual [${index}]:`,
          indent(json(actual[index])),
        ].join('\n'),
      };
    }
  }
  return null;
}

interface Difference {
  pointer: string;
  expected: unknown;
  actual: unknown;
  reason: string;
}

function findMismatch(expected: unknown, actual: unknown, pointer: string): Difference | undefined {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return differ(expected, actual, pointer);
    if (expected.length !== actual.length) {
      return {
        pointer,
        expected,
        actual,
        reason: `expected ${plural(expected.length, 'element')}, actual ${plural(actual.length, 'element')}`,
      };
    }
    for (let i = 0; i < expected.length; i++) {
      const found = findMismatch(expected[i], actual[i], `${pointer}/${i}`);
      if (found) return found;
    }
    return undefined;
  }
  if (isObject(expected)) {
    if (!isObject(actual)) return differ(expected, actual, pointer);
    for (const [property, value] of Object.entries(expected)) {
      const found = findMismatch(value, Object.hasOwn(actual, property) ? actual[property] : undefined, `${pointer}/${escapeToken(property)}`);
      if (found) return found;
    }
    return undefined;
  }
  return expected === actual ? undefined : differ(expected, actual, pointer);
}

function differ(expected: unknown, actual: unknown, pointer: string): Difference {
  return { pointer, expected, actual, reason: `expected ${show(expected)}, actual ${show(actual)}` };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function escapeToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

function show(value: unknown): string {
  return value === undefined ? '(absent)' : JSON.stringify(value);
}

function json(value: unknown): string {
  return value === undefined ? '(absent)' : JSON.stringify(value, null, 2);
}

function listDocuments(documents: readonly unknown[]): string[] {
  return documents.length === 0 ? ['  (none)'] : documents.map((document, i) => `  [${i}] ${show(document)}`);
}

function indent(text: string): string {
  return text.replace(/^/gm, '  ');
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
