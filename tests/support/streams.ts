export { readStream, type StoredMessage } from '@segment/nats';

/** Polls `check` until it returns true, or fails after `timeoutMs` with `describe()` in the message. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, describe: () => Promise<string> | string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms ${await describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The shared NATS server of the cross-process suites. */
export const natsUrl = process.env.SEGMENT_NATS_URL ?? 'nats://127.0.0.1:4222';

export function randomNamespace(prefix: string): string {
  return `t_${prefix}_${Math.random().toString(36).slice(2, 8)}`;
}
