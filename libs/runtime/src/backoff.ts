import { setTimeout as sleep } from 'node:timers/promises';

/** Waits before the next try of a failing loop: 200 ms, 400 ms, ... up to `maxMs` (5 s). */
export function backOff(failures: number, maxMs = 5_000): Promise<void> {
  return sleep(Math.min(maxMs, 100 * 2 ** Math.min(failures, 6)));
}
