// The lab's one wait loop: ask until there is an answer or the time is up, and then say what was
// being waited for, so a stuck `lab up` names the step.
import { setTimeout as sleep } from 'node:timers/promises';

/** Calls `fn` every `intervalMs` until it returns something other than undefined, and returns that. */
export async function pollUntil<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined> | T | undefined,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
