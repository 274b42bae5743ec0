// The runtime: one watch cache (src/kube/informer.ts) per watched resource feeding per-object
// workers. A worker processes its object serially (never two cycles for one object at once) and
// level-based: it always works on the newest version it knows, including the one its own patch
// returned. Cycles, timers and raw event handlers of one object share the worker, so they never
// overlap either.
import type { KubeClient } from '../kube/client.ts';
import { isApiError } from '../kube/errors.ts';
import { InformerSet } from '../kube/informers.ts';
import { objectKey, type KubeObject } from '../kube/object.ts';
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
  /**
   * The program's shared watch caches (started by the caller, kept across leadership terms), so
   * handlers can read other kinds from the same caches. @default a private set per run
   */
  informers?: InformerSet;
}

export type ObservedType = 'ADDED' | 'MODIFIED' | 'DELETED';

type Resolved = Required<Omit<ControllerOptions, 'informers'>>;

export class Controller {
  private readonly opts: Resolved;
  private readonly informers: InformerSet | undefined;
  private readonly workers = new Map<string, ObjectWorker>();

  constructor(opts: ControllerOptions) {
    this.informers = opts.informers;
    this.opts = {
      kube: opts.kube,
      registry: opts.registry,
      logger: opts.logger,
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
    const informers = this.informers ?? new InformerSet(kube, logger);
    const unsubscribe: (() => void)[] = [];
    for (const r of resources) {
      const inf = informers.for(r, registry.scopeOf(r));
      unsubscribe.push(
        inf.on('add', (o) => this.observe(r, 'ADDED', o, signal)),
        inf.on('update', (o) => this.observe(r, 'MODIFIED', o, signal)),
        inf.on('delete', (o) => this.observe(r, 'DELETED', o, signal)),
        // A re-list is a fresh read: whatever a worker waited to see of its own write is settled.
        inf.on('synced', () => this.forEachWorker(r, (w) => w.relisted())),
      );
    }
    informers.start();
    if (!signal.aborted) await new Promise((res) => signal.addEventListener('abort', res, { once: true }));
    for (const u of unsubscribe) u();
    if (!this.informers) await informers.stop();
    for (const w of this.workers.values()) w.stopTimers();
    await Promise.all([...this.workers.values()].map((w) => w.idle()));
    this.workers.clear();
  }

  private forEachWorker(r: Resource, fn: (w: ObjectWorker) => void): void {
    const prefix = `${resourceKey(r)}|`;
    for (const [key, w] of this.workers) if (key.startsWith(prefix)) fn(w);
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

/**
 * One object's worker. Its states, named because its fields together form them:
 * - phase 'live': the object exists; cycles and timers run. Phase 'gone': it was deleted; queued
 *   event handlers still run, then the worker is dropped. A recreation returns it to 'live', owed
 *   its resume handlers again.
 * - the work owed, drained in this order by one `running` drain at a time: queued raw `events`,
 *   then a cycle for `latest` while `dirty`, then `dueTimers`.
 * - `ownWrite`: the resourceVersion our last patch returned, until the watch shows it. Watch
 *   events for this object before it are older than `latest` and are ignored; resourceVersions
 *   are only compared for equality (they are opaque), and a re-list settles the wait.
 * - `requeueTimer`: a retry scheduled after a failed patch or a handler asking to run again.
 */
class ObjectWorker {
  private readonly opts: Resolved;
  private readonly r: Resource;
  private readonly signal: AbortSignal;
  private readonly onGone: () => void;
  private readonly log: Logger;
  private phase: 'live' | 'gone' = 'live';
  private latest: KubeObject | undefined;
  private dirty = false;
  private running: Promise<void> | undefined;
  private resumePending = true;
  private ownWrite: string | undefined;
  /** The last few resourceVersions the watch showed (a patch's answer can arrive after its event). */
  private readonly shown: string[] = [];
  private requeueTimer: NodeJS.Timeout | undefined;
  private readonly timerHandles = new Map<string, NodeJS.Timeout>();
  private readonly dueTimers: TimerHandler[] = [];
  private readonly events: { type: ObservedType; obj: KubeObject }[] = [];
  private timersStarted = false;
  private patchFailures = 0;

  constructor(opts: Resolved, r: Resource, signal: AbortSignal, onGone: () => void) {
    this.opts = opts;
    this.r = r;
    this.signal = signal;
    this.onGone = onGone;
    this.log = opts.logger;
  }

  observe(type: ObservedType, obj: KubeObject): void {
    if (this.opts.registry.eventHandlers(this.r).length) this.events.push({ type, obj });
    if (type === 'DELETED') {
      this.phase = 'gone';
      this.latest = obj;
      this.ownWrite = undefined;
      this.stopTimers();
      this.timersStarted = false;
    } else {
      if (this.phase === 'gone') {
        // Recreated under the same name: a new object, owed its resume handlers and timers again.
        this.phase = 'live';
        this.latest = undefined;
        this.resumePending = true;
      }
      this.fromWatch(obj);
      this.startTimers();
    }
    this.kick();
  }

  /** The cache re-listed: its copy is fresh, so stop waiting for our own write to show. */
  relisted(): void {
    this.ownWrite = undefined;
  }

  private fromWatch(obj: KubeObject): void {
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined) {
      this.shown.push(rv);
      if (this.shown.length > 16) this.shown.shift();
    }
    if (this.ownWrite !== undefined) {
      if (obj.metadata.resourceVersion !== this.ownWrite) return; // older than what we wrote
      this.ownWrite = undefined;
      if (this.latest?.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    }
    this.latest = obj;
    this.dirty = true;
  }

  /** What our own patch returned: newer than anything the watch has shown so far. */
  private fromOwnWrite(obj: KubeObject): void {
    const rv = obj.metadata.resourceVersion;
    // A patch that changed nothing returns the version we already have: nothing to wait for.
    if (rv === undefined || rv === this.latest?.metadata.resourceVersion) return;
    // The watch already showed it (the event beat the answer): what we hold is as new or newer.
    if (this.shown.includes(rv)) return;
    this.latest = obj;
    this.dirty = true;
    this.ownWrite = rv;
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
        if (this.phase === 'gone' && !this.events.length) this.onGone();
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
      if (this.phase === 'gone') return;
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
      if (patched) this.fromOwnWrite(patched);
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
      if (this.signal.aborted || this.phase === 'gone') return;
      if (!refetch || !this.latest) {
        this.dirty = true;
        this.kick();
        return;
      }
      const { name, namespace } = this.latest.metadata;
      this.opts.kube
        .getOrUndefined<KubeObject>(this.r, name, namespace)
        .then((fresh) => {
          // A GET is a fresh read: newer than the watch's copy or equal to it.
          if (fresh) this.latest = fresh;
          this.ownWrite = undefined;
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
    if (this.signal.aborted || this.phase === 'gone') return;
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
        if (patched) this.fromOwnWrite(patched);
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
