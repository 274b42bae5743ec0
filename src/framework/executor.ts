// Runs one handler once and turns whatever happens into an Outcome. It never throws: the cycle
// decides from the outcome what to persist and when to come back. Retry exhaustion and timeouts
// become permanent failures; unknown exceptions are temporary with capped exponential backoff.
import { backoffSeconds } from '../util/backoff.ts';
import { PermanentError } from './errors/permanent-error.ts';
import { TemporaryError } from './errors/temporary-error.ts';
import type { ChangeHandler, HandlerFn, HandlerKwargs } from './handler.ts';
import type { ProgressRecord } from './progress.ts';

export type Outcome =
  | { kind: 'success'; result: unknown; durationMs: number }
  | { kind: 'temporary'; delaySeconds: number; message: string; error: unknown; durationMs: number }
  | { kind: 'permanent'; message: string; error: unknown; durationMs: number };

type Policy = Pick<ChangeHandler, 'retries' | 'backoff' | 'backoffCap' | 'timeout'>;

export async function executeHandler(
  fn: HandlerFn,
  kwargs: HandlerKwargs,
  policy: Policy,
  record: ProgressRecord | undefined,
  now: () => number = Date.now,
): Promise<Outcome> {
  const retry = record?.retries ?? 0;
  const started = record ? Date.parse(record.started) : now();
  if (policy.timeout !== undefined && now() - started > policy.timeout * 1000) {
    return {
      kind: 'permanent',
      message: `timed out after ${policy.timeout}s`,
      error: undefined,
      durationMs: 0,
    };
  }
  const t0 = now();
  let outcome: Outcome;
  try {
    const result = await fn(kwargs);
    outcome = { kind: 'success', result, durationMs: now() - t0 };
  } catch (err: unknown) {
    const durationMs = now() - t0;
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof PermanentError) {
      outcome = { kind: 'permanent', message, error: err, durationMs };
    } else if (err instanceof TemporaryError) {
      outcome = { kind: 'temporary', delaySeconds: err.delaySeconds, message, error: err, durationMs };
    } else {
      const delaySeconds = backoffSeconds(policy.backoff, retry, policy.backoffCap);
      outcome = { kind: 'temporary', delaySeconds, message, error: err, durationMs };
    }
  }
  if (outcome.kind !== 'temporary') return outcome;
  // What happens after this failure: give up when out of attempts or out of time.
  const attempts = retry + 1;
  if (attempts >= policy.retries) {
    return {
      ...outcome,
      kind: 'permanent',
      message: `${outcome.message} (gave up after ${attempts} attempts)`,
    };
  }
  if (policy.timeout !== undefined && now() + outcome.delaySeconds * 1000 - started > policy.timeout * 1000) {
    return {
      ...outcome,
      kind: 'permanent',
      message: `${outcome.message} (timed out after ${policy.timeout}s)`,
    };
  }
  return outcome;
}

/** The progress record after an outcome. */
export function recordAfter(
  prev: ProgressRecord | undefined,
  outcome: Outcome,
  nowMs: number,
  digest?: string,
): ProgressRecord {
  const started = prev?.started ?? new Date(nowMs).toISOString();
  const retries = prev?.retries ?? 0;
  switch (outcome.kind) {
    case 'success':
      return {
        started,
        stopped: new Date(nowMs).toISOString(),
        retries,
        success: true,
        failure: false,
        digest,
      };
    case 'permanent':
      return {
        started,
        stopped: new Date(nowMs).toISOString(),
        retries: retries + 1,
        success: false,
        failure: true,
        message: outcome.message,
        digest,
      };
    case 'temporary':
      return {
        started,
        delayedUntil: new Date(nowMs + outcome.delaySeconds * 1000).toISOString(),
        retries: retries + 1,
        success: false,
        failure: false,
        message: outcome.message,
      };
  }
}
