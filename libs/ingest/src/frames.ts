// What the gateway answers: HTTP response bodies and WebSocket text frames. One module so the
// shapes are documented in one place and the tests and clients can share them.
import type { RejectedDocument } from './documents.ts';

/** The path of the events collection, for HTTP POST and WebSocket alike. */
export const ingestPath = '/ingest/segment/events';

/** The WebSocket subprotocol: text frames of whitespace-separated JSON documents (as Estuary Flow's). */
export const jsonV1Protocol = 'json/v1';

/** HTTP 200: every document stored (or recognised as a duplicate), `sequences` in document order. */
export interface AcceptedResponse {
  accepted: number;
  duplicates: number;
  sequences: number[];
}

/** HTTP 4xx/5xx: what went wrong; `invalid` lists each rejected document (400 and 403). */
export interface ErrorResponse {
  error: string;
  invalid?: RejectedDocument[];
}

/**
 * WebSocket ack, sent after a batch of frames is committed to JetStream: the highest stream
 * sequence per subject in the batch, and the documents accepted on this connection so far.
 */
export interface AckFrame {
  offsets: Record<string, number>;
  processed: number;
}

/**
 * WebSocket error: `frame` is the 1-based number of the text or binary frame on this connection,
 * `index` the 0-based document within it (absent when the whole frame is refused).
 */
export interface ErrorFrame {
  error: string;
  frame: number;
  index?: number;
  errors?: string[];
}

export function ackFrame(offsets: ReadonlyMap<string, number>, processed: number): string {
  return JSON.stringify({ offsets: Object.fromEntries(offsets), processed } satisfies AckFrame);
}

export function errorFrame(frame: ErrorFrame): string {
  return JSON.stringify(frame);
}

/** The one-line summary of a rejected batch: the first problem, and how many documents had one. */
export function rejectionSummary(kind: 'invalid' | 'forbidden', rejected: readonly RejectedDocument[], total: number): string {
  const first = rejected[0];
  const detail = first === undefined ? '' : `; first at ${first.line === undefined ? `index ${first.index}` : `line ${first.line}`}: ${first.errors[0]}`;
  const what = kind === 'invalid' ? 'invalid' : 'for vendors this token may not write';
  return `${rejected.length} of ${total} document${total === 1 ? '' : 's'} ${rejected.length === 1 ? 'is' : 'are'} ${what}; nothing was published${detail}`;
}
