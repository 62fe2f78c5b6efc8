// Bearer tokens for the ingest gateway. Configuration holds only SHA-256 hashes of tokens (create
// one with `printf %s "$TOKEN" | sha256sum`), each optionally scoped to a list of vendors. A
// presented token is hashed and compared with every stored hash in constant time, so neither the
// token nor which entry matched leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';

/** One configured token: its SHA-256 (hex) and, when given, the only vendors it may write. */
export interface TokenEntry {
  readonly tokenSha256: string;
  readonly vendors?: readonly number[];
  /** Shown in logs instead of the token, e.g. the client it was issued to. */
  readonly name?: string;
}

/** What a request may do: `vendors` undefined means every vendor. */
export interface TokenGrant {
  readonly name?: string;
  readonly vendors: ReadonlySet<number> | undefined;
}

/** The grant of every request when no tokens are configured. */
export const openGrant: TokenGrant = Object.freeze({ vendors: undefined });

export function allowsVendor(grant: TokenGrant, vendor: number): boolean {
  return grant.vendors === undefined || grant.vendors.has(vendor);
}

export class TokenConfigError extends Error {
  readonly code = 'SEGMENT_INGEST_TOKENS_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'TokenConfigError';
  }
}

export function sha256Hex(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Reads the token list of a tokens file: `[{"tokenSha256": "<64 hex>", "vendors": [1, 2]}, ...]`,
 * or the same list under `{"tokens": [...]}`. Fails naming the entry and field; an entry holding a
 * plain `token` is refused, so a secret never sits in configuration by mistake.
 */
export function parseTokenEntries(json: unknown): TokenEntry[] {
  const list = Array.isArray(json) ? json : isRecord(json) && Array.isArray(json.tokens) ? json.tokens : undefined;
  if (list === undefined) throw new TokenConfigError('tokens: expected an array of {"tokenSha256": "<hex>", "vendors"?: [...]} (or {"tokens": [...]})');
  return list.map((entry: unknown, i: number): TokenEntry => {
    const where = `tokens[${i}]`;
    if (!isRecord(entry)) throw new TokenConfigError(`${where}: expected an object`);
    if ('token' in entry) throw new TokenConfigError(`${where}: store the token's SHA-256 as "tokenSha256", never the token itself (printf %s "$TOKEN" | sha256sum)`);
    for (const key of Object.keys(entry)) {
      if (key !== 'tokenSha256' && key !== 'vendors' && key !== 'name') throw new TokenConfigError(`${where}.${key}: unknown field (expected tokenSha256, vendors, name)`);
    }
    const hash = entry.tokenSha256;
    if (typeof hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hash)) throw new TokenConfigError(`${where}.tokenSha256: expected 64 hex digits (a SHA-256)`);
    const out: { tokenSha256: string; vendors?: number[]; name?: string } = { tokenSha256: hash.toLowerCase() };
    if (entry.vendors !== undefined) {
      if (!Array.isArray(entry.vendors) || !entry.vendors.every((v) => Number.isInteger(v) && v >= 1)) {
        throw new TokenConfigError(`${where}.vendors: expected an array of vendor numbers (integers >= 1)`);
      }
      out.vendors = entry.vendors as number[];
    }
    if (entry.name !== undefined) {
      if (typeof entry.name !== 'string') throw new TokenConfigError(`${where}.name: expected a string`);
      out.name = entry.name;
    }
    return out;
  });
}

/** `Authorization: Bearer <token>` → the token; anything else → undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return match?.[1];
}

interface StoredToken {
  readonly hash: Buffer;
  readonly grant: TokenGrant;
}

/** Authenticates presented tokens against the configured hashes. With none configured, everyone gets `openGrant`. */
export class TokenChecker {
  readonly #tokens: readonly StoredToken[];

  constructor(entries: readonly TokenEntry[] = []) {
    this.#tokens = entries.map((entry) => {
      const grant: { name?: string; vendors: ReadonlySet<number> | undefined } = { vendors: entry.vendors === undefined ? undefined : new Set(entry.vendors) };
      if (entry.name !== undefined) grant.name = entry.name;
      return { hash: Buffer.from(entry.tokenSha256, 'hex'), grant: Object.freeze(grant) };
    });
  }

  /** Whether requests must present a token. */
  get required(): boolean {
    return this.#tokens.length > 0;
  }

  get size(): number {
    return this.#tokens.length;
  }

  /** The grant of a presented token, or undefined when a token is required and this one is missing or unknown. */
  authenticate(token: string | undefined): TokenGrant | undefined {
    if (!this.required) return openGrant;
    if (token === undefined || token.length === 0) return undefined;
    const presented = createHash('sha256').update(token, 'utf8').digest();
    let found: TokenGrant | undefined;
    // Every entry is compared, whether or not an earlier one matched: the time taken does not say which.
    for (const stored of this.#tokens) {
      if (timingSafeEqual(presented, stored.hash) && found === undefined) found = stored.grant;
    }
    return found;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
