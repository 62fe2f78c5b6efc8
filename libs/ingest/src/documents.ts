// Parsed items into events: schema validation with errors that name the field, then the token's
// vendor scope. A batch splits into the accepted events and the rejected documents, each with
// its position, so a client can fix exactly the documents that failed.
import { formatFieldError, validators, type Event } from '@segment/model';
import type { ParsedItem } from './body.ts';
import { allowsVendor, type TokenGrant } from './tokens.ts';

export interface AcceptedDocument {
  readonly index: number;
  readonly event: Event;
  /** The document's own bytes, when it came as one line of NDJSON (`ParsedItem.source`). */
  readonly source?: Uint8Array;
}

/** A document that will not be published, and why: `["/segment/vendor: must be >= 1", ...]`. */
export interface RejectedDocument {
  readonly index: number;
  /** NDJSON only: the 1-based line of the document. */
  readonly line?: number;
  readonly errors: string[];
}

export type DocumentCheck =
  | { ok: true; event: Event }
  /** `reason`: not JSON, against the schema, or a vendor outside the token's scope. */
  | { ok: false; reason: 'json' | 'schema' | 'forbidden'; errors: string[] };

/** Checks one parsed document: JSON, then the event schema, then the grant's vendors. */
export function checkDocument(item: ParsedItem, grant: TokenGrant): DocumentCheck {
  if (!item.ok) return { ok: false, reason: 'json', errors: [item.error] };
  const result = validators.event.check(item.value);
  if (!result.ok) return { ok: false, reason: 'schema', errors: result.errors.map(formatFieldError) };
  const vendor = result.document.segment.vendor;
  if (!allowsVendor(grant, vendor)) return { ok: false, reason: 'forbidden', errors: [forbiddenVendorError(vendor)] };
  return { ok: true, event: result.document };
}

export function forbiddenVendorError(vendor: number): string {
  return `/segment/vendor: vendor ${vendor} is not allowed for this token`;
}

export interface CheckedBatch {
  readonly accepted: AcceptedDocument[];
  /** Not JSON or against the schema: the request is malformed (400). */
  readonly invalid: RejectedDocument[];
  /** Valid, but for a vendor the token may not write (403). */
  readonly forbidden: RejectedDocument[];
}

/** Checks every document of a batch before any is published: a batch is all-or-nothing. */
export function checkBatch(items: readonly ParsedItem[], grant: TokenGrant): CheckedBatch {
  const accepted: AcceptedDocument[] = [];
  const invalid: RejectedDocument[] = [];
  const forbidden: RejectedDocument[] = [];
  for (const item of items) {
    const check = checkDocument(item, grant);
    if (check.ok) {
      accepted.push(item.ok && item.source !== undefined ? { index: item.index, event: check.event, source: item.source } : { index: item.index, event: check.event });
    } else {
      const rejected: RejectedDocument = item.line === undefined ? { index: item.index, errors: check.errors } : { index: item.index, line: item.line, errors: check.errors };
      (check.reason === 'forbidden' ? forbidden : invalid).push(rejected);
    }
  }
  return { accepted, invalid, forbidden };
}
