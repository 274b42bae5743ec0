// One processing cycle of one object: decide the cause (create, update, delete, resume or nothing),
// pick at most one ready handler (fewest retries first), run it through the executor, and build the
// one patch that records its progress. When no handler of the cause is left, the same patch purges
// the progress, stores the handled essence, and adds or removes our finalizer. One handler per cycle
// means a crash loses at most the handler in flight; everything before it is persisted.
import type { Logger } from '../log/logger.ts';
import type { KubeObject } from '../kube/object.ts';
import {
  LAST_HANDLED_ANNOTATION,
  PROGRESS_ANNOTATION,
  canonicalJson,
  diff,
  diffTouches,
  digest,
  essenceOf,
  getField,
  lastHandledEssence,
  type DiffEntry,
  type Essence,
} from './essence.ts';
import { executeHandler, recordAfter, type Outcome } from './executor.ts';
import { bodyKwargs, type ChangeHandler, type Reason } from './handler.ts';
import { Patch } from './patch.ts';
import {
  isFinished,
  isReady,
  nextDelayMs,
  progressAnnotationValue,
  readProgress,
  type Progress,
} from './progress.ts';

export type Cause = 'create' | 'update' | 'delete' | 'resume';

export interface CycleInput {
  body: KubeObject;
  /** Change handlers registered for the object's resource. */
  handlers: readonly ChangeHandler[];
  finalizer: string;
  /** Resume handlers still owed to this object by this process (first sight since start). */
  resumePending: boolean;
  logger: Logger;
  signal: AbortSignal;
  now?: () => number;
}

export interface EventNote {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface CycleResult {
  patch: Patch;
  cause: Cause | undefined;
  ran?: { handler: ChangeHandler; outcome: Outcome };
  /** Every handler of the cause is finished (or there was nothing to do). */
  done: boolean;
  /** Another handler is ready right now: process again after patching. */
  again: boolean;
  /** Come back after this many milliseconds (a handler is delayed). */
  requeueAfterMs?: number;
  /** Resume handlers have all finished (or there were none). */
  resumed: boolean;
  events: EventNote[];
}

interface Plan {
  cause: Cause | undefined;
  handlers: ChangeHandler[];
  diff: DiffEntry[];
  last: Essence | undefined;
  essence: Essence;
}

/** Which cause applies and which handlers belong to it. Pure: exported for unit tests. */
export function planCycle(
  body: KubeObject,
  handlers: readonly ChangeHandler[],
  resumePending: boolean,
): Plan {
  const essence = essenceOf(body);
  const last = lastHandledEssence(body);
  const of = (reason: ChangeHandler['reason']) => handlers.filter((h) => h.reason === reason);
  if (body.metadata.deletionTimestamp) {
    const hs = of('delete').filter((h) => !h.field || getField(body, h.field) !== undefined);
    return { cause: 'delete', handlers: hs, diff: [], last, essence };
  }
  if (!last) {
    const hs = of('create').filter((h) => !h.field || getField(body, h.field) !== undefined);
    return { cause: 'create', handlers: hs, diff: [], last, essence };
  }
  const d = diff(last, essence);
  const updates = d.length ? of('update').filter((h) => !h.field || diffTouches(d, h.field)) : [];
  const resumes = resumePending
    ? of('resume').filter((h) => !h.field || getField(body, h.field) !== undefined)
    : [];
  const cause: Cause | undefined = d.length ? 'update' : resumePending ? 'resume' : undefined;
  return { cause, handlers: [...resumes, ...updates], diff: d, last, essence };
}

/** What a handler "sees": its field, or the whole essence. A change in it reruns a finished handler. */
function seenDigest(h: ChangeHandler, essence: Essence, body: KubeObject): string {
  if (h.reason === 'delete') return '';
  return digest(h.field ? fieldValue(h.field, essence, body) : essence);
}

/** A field as the user set it: spec, labels and annotations from the essence, anything else from the body. */
function fieldValue(field: string, essence: Essence, body: KubeObject): unknown {
  const fromEssence = /^(spec|metadata\.labels|metadata\.annotations)(\.|$)/.test(field);
  return getField(fromEssence ? essence : body, field);
}

function finishedFor(h: ChangeHandler, progress: Progress, essence: Essence, body: KubeObject): boolean {
  const rec = progress[h.id];
  if (!isFinished(rec)) return false;
  // A success for an older spec does not count: the handler must see the current one.
  return rec?.digest === undefined || rec.digest === seenDigest(h, essence, body);
}

export async function runCycle(input: CycleInput): Promise<CycleResult> {
  const { body, finalizer, logger } = input;
  const now = input.now ?? Date.now;
  const patch = new Patch();
  const events: EventNote[] = [];
  const finalizers = body.metadata.finalizers ?? [];
  const hasFinalizer = finalizers.includes(finalizer);
  const needsFinalizer = input.handlers.some((h) => h.reason === 'delete');
  const deleting = !!body.metadata.deletionTimestamp;

  if (deleting && !hasFinalizer) {
    // Not ours to hold up (or already released): nothing to do.
    return { patch, cause: undefined, done: true, again: false, resumed: true, events };
  }
  if (!deleting && needsFinalizer && !hasFinalizer) {
    // The finalizer goes on first, in a cycle of its own: its write carries a resourceVersion
    // precondition, and a conflict then costs a quick retry rather than a handler rerun.
    patch.finalizers = [...finalizers, finalizer];
    return { patch, cause: undefined, done: false, again: true, resumed: false, events };
  }

  const plan = planCycle(body, input.handlers, input.resumePending);
  const progress: Progress = { ...readProgress(body) };
  const hadProgress = Object.keys(progress).length > 0;
  const nowDate = new Date(now());
  const pending = plan.handlers.filter((h) => !finishedFor(h, progress, plan.essence, body));
  // Stale records (an older spec's success) are dropped so the handler starts fresh.
  for (const h of pending) if (isFinished(progress[h.id])) delete progress[h.id];
  const ready = pending
    .filter((h) => isReady(progress[h.id], nowDate))
    .sort((a, b) => (progress[a.id]?.retries ?? 0) - (progress[b.id]?.retries ?? 0));

  let ran: CycleResult['ran'];
  if (ready.length) {
    const h = ready[0] as ChangeHandler;
    const rec = progress[h.id];
    const log = logger.child({ handler: h.id, reason: plan.cause, retry: rec?.retries ?? 0 });
    const oldValue = h.field && plan.last ? getField(plan.last, h.field) : undefined;
    const newValue = h.field ? fieldValue(h.field, plan.essence, body) : undefined;
    log.debug('handler starting');
    const outcome = await executeHandler(
      h.fn,
      {
        ...bodyKwargs(body),
        patch,
        logger: log,
        retry: rec?.retries ?? 0,
        reason: h.reason as Reason,
        diff: plan.cause === 'update' ? plan.diff : [],
        old: oldValue,
        new: newValue,
        signal: input.signal,
      },
      h,
      rec,
      now,
    );
    progress[h.id] = recordAfter(rec, outcome, now(), seenDigest(h, plan.essence, body));
    ran = { handler: h, outcome };
    if (outcome.kind === 'success') {
      log.info({ durationMs: outcome.durationMs }, 'handler succeeded');
    } else if (outcome.kind === 'temporary') {
      log.warn({ err: outcome.error, delaySeconds: outcome.delaySeconds }, 'handler failed; will retry');
      events.push({
        type: 'Warning',
        reason: 'HandlerRetrying',
        message: `Handler ${h.id} failed, retrying in ${outcome.delaySeconds}s: ${outcome.message}`,
      });
    } else {
      log.error({ err: outcome.error }, 'handler failed permanently');
      events.push({
        type: 'Warning',
        reason: 'HandlerFailed',
        message: `Handler ${h.id} failed permanently: ${outcome.message}`,
      });
    }
  }

  const stillPending = plan.handlers.filter((h) => !finishedFor(h, progress, plan.essence, body));
  const done = stillPending.length === 0;
  if (done) {
    if (hadProgress || ran) patch.metadata.annotations[PROGRESS_ANNOTATION] = null;
    if (plan.cause === 'delete') {
      if (hasFinalizer) patch.finalizers = finalizers.filter((f) => f !== finalizer);
      if (ran)
        events.push({
          type: 'Normal',
          reason: 'Deleted',
          message: 'All deletion handlers finished; finalizer released',
        });
    } else {
      const stored = body.metadata.annotations?.[LAST_HANDLED_ANNOTATION];
      const value = canonicalJson(plan.essence);
      if (stored !== value) patch.metadata.annotations[LAST_HANDLED_ANNOTATION] = value;
      if (ran && (plan.cause === 'create' || plan.cause === 'update')) {
        const failed = plan.handlers.filter((h) => progress[h.id]?.failure).map((h) => h.id);
        if (!failed.length)
          events.push({ type: 'Normal', reason: 'Handled', message: `All ${plan.cause} handlers succeeded` });
      }
    }
  } else if (ran) {
    patch.metadata.annotations[PROGRESS_ANNOTATION] = progressAnnotationValue(progress);
  }

  const stillReady = stillPending.filter((h) => isReady(progress[h.id], new Date(now())));
  const requeueAfterMs = done
    ? undefined
    : nextDelayMs(
        progress,
        stillPending.map((h) => h.id),
        new Date(now()),
      );
  const resumed = plan.handlers
    .filter((h) => h.reason === 'resume')
    .every((h) => finishedFor(h, progress, plan.essence, body));
  return {
    patch,
    cause: plan.cause,
    ran,
    done,
    again: !done && stillReady.length > 0,
    requeueAfterMs,
    resumed,
    events,
  };
}
