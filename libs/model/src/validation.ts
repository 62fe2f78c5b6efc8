import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { isDateTime } from './order.ts';
import { schemaDocuments, schemaRefs, type SchemaName } from './schemas.ts';
import type { Event, Membership, Profile, PushProfileRegister, SegmentDetail, Toggle, ToggleRegister } from './schema-types.generated.ts';

/** The document type of each named schema. */
export interface Documents {
  event: Event;
  detail: SegmentDetail;
  membership: Membership;
  profile: Profile;
  toggle: Toggle;
  toggleRegister: ToggleRegister;
  pushProfileRegister: PushProfileRegister;
}

const strategies = ['lastWriteWins', 'firstWriteWins', 'merge', 'minimize', 'maximize', 'append', 'sum'];

/** The `reduce` annotation, checked when schemas compile so a typo fails at start, not mid-stream. */
export const reduceKeywordMetaSchema = {
  type: 'object',
  properties: {
    strategy: { enum: strategies },
    key: { type: 'array', items: { type: 'string', pattern: '^(/[^/]*)+$' }, minItems: 1 },
  },
  required: ['strategy'],
  additionalProperties: false,
};

function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true, schemas: [...schemaDocuments.values()] as object[] });
  ajv.addKeyword({ keyword: 'reduce', schemaType: 'object', metaSchema: reduceKeywordMetaSchema });
  addFormats.default(ajv, { mode: 'full' });
  // RFC 3339 exactly, as `compareInstants` reads it: ajv-formats also takes `+05`, `+0530` and any
  // whitespace for the `T`, which no reduction could then order; the hand scan is also 4-7x cheaper.
  ajv.addFormat('date-time', { type: 'string', validate: isDateTime });
  // Text that UTF-8 (and so NATS headers, KV keys and Postgres) can carry: JSON allows lone surrogates.
  ajv.addFormat('unicode', { type: 'string', validate: (text: string) => text.isWellFormed() });
  return ajv;
}

/** A field and the rule it broke: `/segment/vendor: must be >= 1`. */
export interface FieldError {
  path: string;
  message: string;
}

export class DocumentValidationError extends Error {
  readonly code = 'SEGMENT_INVALID_DOCUMENT';
  readonly errors: readonly FieldError[];
  constructor(schema: string, errors: readonly FieldError[]) {
    super(`invalid ${schema}: ${errors.map(formatFieldError).join('; ')}`);
    this.name = 'DocumentValidationError';
    this.errors = errors;
  }
}

export function formatFieldError(error: FieldError): string {
  return `${error.path || '/'}: ${error.message}`;
}

/** Turns ajv's errors into ones that name the offending field itself, not its parent object. */
export function toFieldErrors(errors: readonly ErrorObject[]): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const error of errors) {
    const field = describe(error);
    const text = formatFieldError(field);
    if (!seen.has(text)) {
      seen.add(text);
      out.push(field);
    }
  }
  return out;
}

function describe(error: ErrorObject): FieldError {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: `${error.instancePath}/${escape(String(params.missingProperty))}`, message: 'is required' };
    case 'additionalProperties':
      return { path: `${error.instancePath}/${escape(String(params.additionalProperty))}`, message: 'is not allowed' };
    case 'const':
      return { path: error.instancePath, message: `must be ${JSON.stringify(params.allowedValue)}` };
    case 'false schema': {
      // A property forbidden by `dependentSchemas` says which property forbids it.
      const owner = /\/dependentSchemas\/([^/]+)\//.exec(error.schemaPath)?.[1];
      return { path: error.instancePath, message: owner ? `is not allowed when /${owner} is given` : 'is not allowed' };
    }
    default:
      return { path: error.instancePath, message: error.message ?? 'is invalid' };
  }
}

function escape(property: string): string {
  return property.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** A compiled validator of one named schema: `check` answers, `assert` throws with field errors. */
export interface Validator<T> {
  readonly name: SchemaName;
  check(document: unknown): { ok: true; document: T } | { ok: false; errors: FieldError[] };
  assert(document: unknown): T;
}

function compileValidator<N extends SchemaName>(ajv: Ajv2020, name: N): Validator<Documents[N]> {
  const validate = ajv.getSchema(schemaRefs[name]) as ValidateFunction<Documents[N]> | undefined;
  if (!validate) throw new Error(`schema ${name} (${schemaRefs[name]}) did not compile`);
  return {
    name,
    check(document) {
      return validate(document) ? { ok: true, document } : { ok: false, errors: toFieldErrors(validate.errors ?? []) };
    },
    assert(document) {
      if (validate(document)) return document;
      throw new DocumentValidationError(name, toFieldErrors(validate.errors ?? []));
    },
  };
}

function compileAll(): { readonly [N in SchemaName]: Validator<Documents[N]> } {
  const ajv = createAjv();
  const names = Object.keys(schemaRefs) as SchemaName[];
  return Object.fromEntries(names.map((name) => [name, compileValidator(ajv, name)])) as never;
}

/** Validators of every named schema, compiled once per process. */
export const validators = compileAll();
