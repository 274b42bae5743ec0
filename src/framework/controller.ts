// The runtime: one watch loop per watched resource feeding per-object workers. A worker processes
// its object serially (never two cycles for one object at once) and level-based: it always works on
// the newest version it knows, including the one its own patch returned. Cycles, timers and raw
// event handlers of one object share the worker, so they never overlap either.
import type { KubeClient } from '../kube/client.ts';
import { isApiError } from '../kube/errors.ts';
import type { KubeObject } from '../kube/object.ts';
import type { Resource } from '../kube/resource.ts';
import type { Logger } from '../log/logger.ts';
import { noMetrics, type FrameworkMetrics } from '../metrics/framework.ts';
import { backoffSeconds } from '../util/backoff.ts';
import { runCycle } from './cycle.ts';
import { postEvent } from './events.ts';
import { executeHandler } from './executor.ts';
import { LeadershipLost } from './leader.ts';
import { bodyKwargs, type EventKwargs, type TimerHandler } from './handler.ts';
import { Patch } from './patch.ts';
import { resourceKey, type Registry } from './registry.ts';
import { objectKey, watchLoop, type ObservedType } from './watcher.ts';

/** Our finalizer: present while delete handlers still have to run. */
export const DEFAULT_FINALIZER = 'network.trellis.dev/finalizer';

export interface ControllerOptions {
  kube: KubeClient;
  registry: Registry;
  logger: Logger;
  /** @default network.trellis.dev/finalizer */
  finalizer?: string;
  /** @default no metrics */
  metrics?: FrameworkMetrics;
  /** Event source component. @default trellis-operator */
  component?: string;
}

/** True when a is a newer version than b (etcd resourceVersions are increasing integers). */
export function isNewer(a: KubeObject, b: KubeObject | undefined): boolean {
  if (!b) return true;
  const ra = a.metadata.resourceVersion ?? '';
  const rb = b.metadata.resourceVersion ?? '';
  if (/^\d+$/.test(ra) && /^\d+$/.test(rb)) return BigInt(ra) > BigInt(rb);
  return ra !== rb;
}

export class Controller {
  private readonly opts: Required<ControllerOptions>;
  private readonly workers = new Map<string, ObjectWorker>();

  constructor(opts: ControllerOptions) {
    this.opts = {
      ...opts,
      finalizer: opts.finalizer ?? DEFAULT_FINALIZER,
      metrics: opts.metrics ?? noMetrics,
      component: opts.component ?? 'trellis-operator',
    };
  }

  /** Watches and processes until the signal aborts, then waits for in-flight work to finish. */
  async run(signal: AbortSignal): Promise<void> {
    const { registry, kube, logger } = this.opts;
    const resources = registry.watchedResources();
    if (!resources.length) throw new Error('no handlers registered: nothing to watch');
    const loops = resources.map((r) => {
      const scope = registry.scopeOf(r);
      return watchLoop(kube, r, {
        ...scope,
        signal,
        logger: logger.child({ resource: r.plural }),
        onEvent: (type, obj) => this.observe(r, type, obj, signal),
      });
    });
    await Promise.all(loops);
    for (const w of this.workers.values()) w.stopTimers();
    await Promise.all([...this.workers.values()].map((w) => w.idle()));
    this.workers.clear();
  }

  private observe(r: Resource, type: ObservedType, obj: KubeObject, signal: AbortSignal): void {
    if (signal.aborted) return;
    const key = `${resourceKey(r)}|${objectKey(obj)}`;
    let w = this.workers.get(key);
    if (!w) {
      if (type === 'DELETED' && !this.opts.registry.eventHandlers(r).length) return;
      w = new ObjectWorker(this.opts, r, signal, () => {
        if (this.workers.get(key) === w) this.workers.delete(key);
      });
      this.workers.set(key, w);
    }
    w.observe(type, obj);
  }
}

class ObjectWorker {
  private readonly opts: Required<ControllerOptions>;
  private readonly r: Resource;
  private readonly signal: AbortSignal;
  private readonly onGone: () => void;
  private readonly log: Logger;
  private latest: KubeObject | undefined;
  private gone = false;
  private dirty = false;
  private running: Promise<void> | undefined;
  private resumePending = true;
  private requeueTimer: NodeJS.Timeout | undefined;
  private readonly timerHandles = new Map<string, NodeJS.Timeout>();
  private readonly dueTimers: TimerHandler[] = [];
  private readonly events: { type: ObservedType; obj: KubeObject }[] = [];
  private timersStarted = false;
  private patchFailures = 0;

  constructor(opts: Required<ControllerOptions>, r: Resource, signal: AbortSignal, onGone: () => void) {
    this.opts = opts;
    this.r = r;
    this.signal = signal;
    this.onGone = onGone;
    this.log = opts.logger;
  }

  observe(type: ObservedType, obj: KubeObject): void {
    if (this.opts.registry.eventHandlers(this.r).length) this.events.push({ type, obj });
    if (type === 'DELETED') {
      this.gone = true;
      this.latest = obj;
      this.stopTimers();
      this.timersStarted = false;
    } else {
      if (this.gone) {
        // Recreated under the same name: a new object, owed its resume handlers and timers again.
        this.gone = false;
        this.latest = undefined;
        this.resumePending = true;
      }
      this.offer(obj);
      this.startTimers();
    }
    this.kick();
  }

  /** Resolves when nothing is running for this object. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  stopTimers(): void {
    for (const t of this.timerHandles.values()) clearTimeout(t);
    this.timerHandles.clear();
    if (this.requeueTimer) clearTimeout(this.requeueTimer);
    this.requeueTimer = undefined;
  }

  private offer(obj: KubeObject): void {
    if (isNewer(obj, this.latest)) {
      this.latest = obj;
      this.dirty = true;
    }
  }

  private kick(): void {
    if (this.running || this.signal.aborted) return;
    this.running = this.drain()
      .catch((err: unknown) => {
        // Handlers cannot throw past the executor; this is a framework bug. Keep the process alive.
        this.log.error({ err, kind: this.r.kind }, 'unexpected error while processing an object');
        this.requeue(5000, true);
      })
      .finally(() => {
        this.running = undefined;
        if (this.gone && !this.events.length) this.onGone();
        else if (!this.signal.aborted && (this.dirty || this.events.length || this.dueTimers.length))
          this.kick();
      });
  }

  private async drain(): Promise<void> {
    while (!this.signal.aborted) {
      const ev = this.events.shift();
      if (ev) {
        await this.runEventHandlers(ev.type, ev.obj);
        continue;
      }
      if (this.gone) return;
      if (this.dirty && this.latest) {
        this.dirty = false;
        await this.process(this.latest);
        continue;
      }
      const timer = this.dueTimers.shift();
      if (timer && this.latest) {
        await this.runTimer(timer, this.latest);
        continue;
      }
      return;
    }
  }

  private async process(body: KubeObject): Promise<void> {
    const { registry, finalizer, metrics } = this.opts;
    const handlers = registry.changeHandlers(this.r);
    if (!handlers.length) return;
    const log = this.log.child({ object: objectKey(body), kind: this.r.kind });
    if (this.requeueTimer) clearTimeout(this.requeueTimer);
    this.requeueTimer = undefined;
    const res = await runCycle({
      body,
      handlers,
      finalizer,
      resumePending: this.resumePending,
      logger: log,
      signal: this.signal,
    });
    if (res.resumed) this.resumePending = false;
    if (res.ran) {
      const o = res.ran.outcome;
      metrics.handler(this.r.plural, res.ran.handler.id, o.kind, o.durationMs / 1000);
    }
    metrics.cycle(
      this.r.plural,
      !res.ran
        ? 'idle'
        : res.ran.outcome.kind === 'success'
          ? 'success'
          : res.ran.outcome.kind === 'temporary'
            ? 'retry'
            : 'failure',
    );
    for (const e of res.events)
      await postEvent(this.opts.kube, body, { ...e, component: this.opts.component }, log);
    if (!res.patch.isEmpty()) {
      const patched = await this.applyPatch(body, res.patch, log);
      if (patched) this.offer(patched);
      else return; // applyPatch scheduled a retry
    } else if (res.again) {
      this.dirty = true;
    }
    if (res.requeueAfterMs !== undefined) this.requeue(res.requeueAfterMs);
  }

  /** Sends the cycle's patch: status to the status subresource, the rest to the object. */
  private async applyPatch(body: KubeObject, patch: Patch, log: Logger): Promise<KubeObject | undefined> {
    const { kube } = this.opts;
    const { name, namespace } = body.metadata;
    let result: KubeObject | undefined;
    try {
      if (patch.hasStatus()) {
        try {
          result = await kube.mergePatch(this.r, name, patch.statusPatch(), namespace, 'status');
        } catch (err: unknown) {
          // No status subresource on this resource: status goes with the object, in one patch.
          if (!isApiError(err, 404)) throw err;
          const whole = { ...patch.mainPatch(body.metadata.resourceVersion), ...patch.statusPatch() };
          return await kube.mergePatch(this.r, name, whole, namespace);
        }
      }
      if (patch.hasMain()) {
        // The status write moved the resourceVersion on; the finalizer precondition follows it.
        const rv = result?.metadata.resourceVersion ?? body.metadata.resourceVersion;
        result = await kube.mergePatch(this.r, name, patch.mainPatch(rv), namespace);
      }
      this.patchFailures = 0;
      return result;
    } catch (err: unknown) {
      this.opts.metrics.cycle(this.r.plural, 'error');
      if (isApiError(err, 404)) {
        log.debug('object vanished before its patch');
        return undefined;
      }
      // 409: someone changed the finalizers under us; anything else: the API is unhappy. Either way
      // re-read and run the cycle again soon; the handler's progress was not recorded.
      this.patchFailures += 1;
      const delayMs = isApiError(err, 409) ? 200 : backoffSeconds(1, this.patchFailures - 1, 60) * 1000;
      log.warn({ err, delayMs }, 'patching the object failed; will retry');
      this.requeue(delayMs, true);
      return undefined;
    }
  }

  /** Process again after ms; refetch re-reads the object first (our copy is known stale). */
  private requeue(ms: number, refetch = false): void {
    if (this.requeueTimer) clearTimeout(this.requeueTimer);
    this.requeueTimer = setTimeout(() => {
      this.requeueTimer = undefined;
      if (this.signal.aborted || this.gone) return;
      if (!refetch || !this.latest) {
        this.dirty = true;
        this.kick();
        return;
      }
      const { name, namespace } = this.latest.metadata;
      this.opts.kube
        .getOrUndefined<KubeObject>(this.r, name, namespace)
        .then((fresh) => {
          if (fresh) this.latest = { ...fresh, apiVersion: fresh.apiVersion, kind: fresh.kind };
          this.dirty = true;
          this.kick();
        })
        .catch(() => this.requeue(2000, true));
    }, ms);
    this.requeueTimer.unref?.();
  }

  private startTimers(): void {
    if (this.timersStarted) return;
    this.timersStarted = true;
    for (const t of this.opts.registry.timers(this.r)) this.scheduleTimer(t, t.initialDelay);
  }

  private scheduleTimer(t: TimerHandler, seconds: number): void {
    if (this.signal.aborted || this.gone) return;
    const handle = setTimeout(() => {
      this.timerHandles.delete(t.id);
      this.dueTimers.push(t);
      this.kick();
    }, seconds * 1000);
    handle.unref?.();
    this.timerHandles.set(t.id, handle);
  }

  private async runTimer(t: TimerHandler, body: KubeObject): Promise<void> {
    const log = this.log.child({ object: objectKey(body), kind: this.r.kind, timer: t.id });
    try {
      if (body.metadata.deletionTimestamp) return;
      const patch = new Patch();
      const outcome = await executeHandler(
        t.fn,
        {
          ...bodyKwargs(body),
          patch,
          logger: log,
          retry: 0,
          reason: 'timer',
          diff: [],
          old: undefined,
          new: undefined,
          signal: this.signal,
        },
        { retries: Infinity, backoff: 0, backoffCap: 0, timeout: undefined },
        undefined,
      );
      this.opts.metrics.handler(this.r.plural, t.id, outcome.kind, outcome.durationMs / 1000);
      if (outcome.kind !== 'success') {
        log.warn({ err: outcome.error }, 'timer failed; next run at the next interval');
        await postEvent(
          this.opts.kube,
          body,
          {
            type: 'Warning',
            reason: 'TimerFailed',
            message: `Timer ${t.id} failed: ${outcome.message}`,
            component: this.opts.component,
          },
          log,
        );
      }
      if (!patch.isEmpty() && !(this.signal.reason instanceof LeadershipLost)) {
        const patched = await this.applyPatch(body, patch, log);
        if (patched) this.offer(patched);
      }
    } finally {
      this.scheduleTimer(t, t.interval);
    }
  }

  private async runEventHandlers(type: ObservedType, obj: KubeObject): Promise<void> {
    for (const h of this.opts.registry.eventHandlers(this.r)) {
      const log = this.log.child({ object: objectKey(obj), kind: this.r.kind, handler: h.id, event: type });
      const kwargs: EventKwargs = { type, body: obj, logger: log, signal: this.signal };
      try {
        await h.fn(kwargs);
      } catch (err: unknown) {
        // Event handlers are fire-and-forget by design (kopf's on.event): log and move on.
        log.warn({ err }, 'event handler failed');
      }
    }
  }
}
