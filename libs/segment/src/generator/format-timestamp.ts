// Timestamps as Go's `time.Format(time.RFC3339)` prints them, which is what the example emits.

/**
 * Formats an instant as RFC 3339 at a UTC offset, truncated to the second like Go's RFC3339
 * layout `2006-01-02T15:04:05Z07:00`: `2021-03-19T13:32:26-04:00`, and `Z` when the offset is
 * zero (Go's `Z07:00` prints `Z` for UTC and for any zone that is at +00:00 at that instant).
 */
export function formatTimestamp(epochMs: number, offsetMinutes: number): string {
  const wholeMinutes = Math.trunc(offsetMinutes);
  const local = new Date(Math.floor(epochMs / 1000) * 1000 + wholeMinutes * 60_000);
  if (Number.isNaN(local.getTime())) throw new RangeError(`not a representable instant: ${epochMs}`);
  const date = `${pad4(local.getUTCFullYear())}-${pad2(local.getUTCMonth() + 1)}-${pad2(local.getUTCDate())}`;
  const time = `${pad2(local.getUTCHours())}:${pad2(local.getUTCMinutes())}:${pad2(local.getUTCSeconds())}`;
  return `${date}T${time}${formatOffset(wholeMinutes)}`;
}

function formatOffset(offsetMinutes: number): string {
  if (offsetMinutes === 0) return 'Z';
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
}

/** The offset of the host's local time zone at an instant, east of UTC positive (`-04:00` is -240). */
export function localUtcOffsetMinutes(epochMs: number): number {
  // getTimezoneOffset counts west of UTC and is -0 for UTC; `0 -` turns -0 into 0.
  return 0 - new Date(epochMs).getTimezoneOffset();
}

const offsetSuffix = /(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** The UTC offset written at the end of an RFC 3339 date-time, or undefined when it has none. */
export function offsetOfTimestamp(text: string): number | undefined {
  const m = offsetSuffix.exec(text);
  if (!m) return undefined;
  if (m[1]) return 0;
  return (m[2] === '-' ? -1 : 1) * (Number(m[3]) * 60 + Number(m[4]));
}

/** A clock for reproducible output: `startMs` on the first call, then `tickMs` later on each call. */
export function tickClock(startMs: number, tickMs: number): () => number {
  let calls = 0;
  return () => startMs + tickMs * calls++;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function pad4(n: number): string {
  return String(n).padStart(4, '0');
}
