// GIVEN an object and handlers, WHEN cycles run, THEN the patches say what the API server would
// store. Patches are applied to a plain object here (merge semantics), which is what we assert on.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import type { KubeObject } from '../kube/object.ts';
import type { Resource } from '../kube/resource.ts';
import { runCycle, type CycleResult } from './cycle.ts';
import { LAST_HANDLED_ANNOTATION, PROGRESS_ANNOTATION } from './essence.ts';
import { TemporaryError } from './errors/temporary-error.ts';
import type { HandlerFn } from './handler.ts';
import type { Patch } from './patch.ts';
import { readProgress } from './progress.ts';
import { Registry } from './registry.ts';

const R: Resource = {
  group: 'test.trellis.dev',
  version: 'v1',
  plural: 'widgets',
  kind: 'Widget',
  namespaced: false,
};
const FIN = 'network.trellis.dev/finalizer';
const logger = pino({ level: 'silent' });

function widget(spec: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'test.trellis.dev/v1',
    kind: 'Widget',
    metadata: { name: 'w', resourceVersion: '1', generation: 1 },
    spec,
  };
}

/** Merge-patch semantics for the parts the framework writes. */
function applyPatch(obj: KubeObject, patch: Patch): KubeObject {
  const annotations: Record<string, string> = { ...(obj.metadata.annotations ?? {}) };
  for (const [k, v] of Object.entries(patch.metadata.annotations)) {
    if (v === null) delete annotations[k];
    else annotations[k] = v;
  }
  return {
    ...obj,
    metadata: {
      ...obj.metadata,
      annotations,
      finalizers: patch.finalizers ?? obj.metadata.finalizers,
      resourceVersion: String(Number(obj.metadata.resourceVersion) + 1),
    },
    status: { ...((obj.status as object) ?? {}), ...patch.status },
  };
}

async function cycle(
  reg: Registry,
  obj: KubeObject,
  resumePending = false,
): Promise<{ res: CycleResult; obj: KubeObject }> {
  const res = await runCycle({
    body: obj,
    handlers: reg.changeHandlers(R),
    finalizer: FIN,
    resumePending,
    logger,
    signal: new AbortController().signal,
  });
  return { res, obj: applyPatch(obj, res.patch) };
}

function counting(): { fn: HandlerFn; calls: () => number } {
  let n = 0;
  return {
    fn: async () => {
      n += 1;
    },
    calls: () => n,
  };
}

describe('a processing cycle', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('runs create handlers one per cycle, persisting progress, then purges it and stores the essence', async () => {
    const reg = new Registry();
    const a = counting();
    const b = counting();
    reg.on.create(R, { id: 'a' }, a.fn);
    reg.on.create(R, { id: 'b' }, b.fn);
    reg.on.delete(R, { id: 'cleanup' }, async () => {});

    let { res, obj } = await cycle(reg, widget({ size: 1 }));
    // The finalizer comes first, alone.
    expect(res.ran).toBeUndefined();
    expect(res.again).toBe(true);
    expect(obj.metadata.finalizers).toEqual([FIN]);
    expect(a.calls()).toBe(0);

    ({ res, obj } = await cycle(reg, obj));
    expect(res.cause).toBe('create');
    expect(a.calls()).toBe(1);
    expect(b.calls()).toBe(0);
    expect(res.again).toBe(true);
    expect(obj.metadata.finalizers).toEqual([FIN]);
    expect(readProgress(obj).a).toMatchObject({ success: true, retries: 0 });

    ({ res, obj } = await cycle(reg, obj));
    expect(b.calls()).toBe(1);
    expect(a.calls()).toBe(1);
    expect(res.done).toBe(true);
    expect(obj.metadata.annotations?.[PROGRESS_ANNOTATION]).toBeUndefined();
    expect(JSON.parse(obj.metadata.annotations?.[LAST_HANDLED_ANNOTATION] ?? '{}')).toEqual({
      metadata: {},
      spec: { size: 1 },
    });

    ({ res } = await cycle(reg, obj));
    expect(res.cause).toBeUndefined();
    expect(res.patch.isEmpty()).toBe(true);
  });

  it('a restarted process skips handlers whose success is recorded and runs the rest', async () => {
    const reg = new Registry();
    const a = counting();
    const b = counting();
    reg.on.create(R, { id: 'a' }, a.fn);
    reg.on.create(R, { id: 'b' }, b.fn);
    const { obj: afterFirst } = await cycle(reg, widget({ size: 1 }));

    // A new registry stands for a new process with fresh counters.
    const reg2 = new Registry();
    const a2 = counting();
    const b2 = counting();
    reg2.on.create(R, { id: 'a' }, a2.fn);
    reg2.on.create(R, { id: 'b' }, b2.fn);
    const { res } = await cycle(reg2, afterFirst, true);
    expect(a2.calls()).toBe(0);
    expect(b2.calls()).toBe(1);
    expect(res.done).toBe(true);
  });

  it('retries an unknown error after the backoff, not before', async () => {
    const reg = new Registry();
    let attempts = 0;
    reg.on.create(R, { id: 'flaky', backoff: 5 }, async () => {
      attempts += 1;
      if (attempts < 3) throw new Error('not yet');
    });
    let { res, obj } = await cycle(reg, widget({}));
    expect(res.ran?.outcome.kind).toBe('temporary');
    expect(res.requeueAfterMs).toBe(5000);
    expect(readProgress(obj).flaky).toMatchObject({
      retries: 1,
      delayedUntil: '2026-01-01T00:00:05.000Z',
      message: 'not yet',
    });

    vi.advanceTimersByTime(4000);
    ({ res, obj } = await cycle(reg, obj));
    expect(res.ran).toBeUndefined();
    expect(attempts).toBe(1);
    expect(res.requeueAfterMs).toBe(1000);

    vi.advanceTimersByTime(1000);
    ({ res, obj } = await cycle(reg, obj));
    expect(attempts).toBe(2);
    expect(res.requeueAfterMs).toBe(10_000); // doubled

    vi.advanceTimersByTime(10_000);
    ({ res, obj } = await cycle(reg, obj));
    expect(attempts).toBe(3);
    expect(res.done).toBe(true);
    expect(obj.metadata.annotations?.[PROGRESS_ANNOTATION]).toBeUndefined();
  });

  it('posts a warning event for a retry and honours a TemporaryError delay', async () => {
    const reg = new Registry();
    reg.on.create(R, { id: 'wait' }, async () => {
      throw new TemporaryError('dependency not ready', 30);
    });
    const { res } = await cycle(reg, widget({}));
    expect(res.requeueAfterMs).toBe(30_000);
    expect(res.events).toEqual([
      {
        type: 'Warning',
        reason: 'HandlerRetrying',
        message: 'Handler wait failed, retrying in 30s: dependency not ready',
      },
    ]);
  });

  it('runs field-filtered update handlers only when their field changed, with old and new values', async () => {
    const reg = new Registry();
    const seen: unknown[] = [];
    reg.on.create(R, { id: 'create' }, async () => {});
    reg.on.update(R, { id: 'backend', field: 'spec.backend' }, async ({ old, new: now }) => {
      seen.push([old, now]);
    });
    let { obj } = await cycle(reg, widget({ backend: { mtu: 1450 }, pools: ['a'] }));
    obj = { ...obj, spec: { backend: { mtu: 1450 }, pools: ['a', 'b'] } };
    let res: CycleResult;
    ({ res, obj } = await cycle(reg, obj));
    expect(res.cause).toBe('update');
    expect(seen).toEqual([]);
    expect(res.done).toBe(true);

    obj = { ...obj, spec: { backend: { mtu: 1400 }, pools: ['a', 'b'] } };
    ({ res, obj } = await cycle(reg, obj));
    expect(seen).toEqual([[{ mtu: 1450 }, { mtu: 1400 }]]);
    expect(res.done).toBe(true);
  });

  it('reruns a finished handler when the spec changed before the cycle completed', async () => {
    const reg = new Registry();
    const a = counting();
    let bAttempts = 0;
    reg.on.create(R, { id: 'a' }, a.fn);
    reg.on.create(R, { id: 'b', backoff: 1 }, async () => {
      bAttempts += 1;
      if (bAttempts === 1) throw new Error('once');
    });
    let { obj } = await cycle(reg, widget({ v: 1 }));
    ({ obj } = await cycle(reg, obj)); // b fails once
    obj = { ...obj, spec: { v: 2 } };
    vi.advanceTimersByTime(1000);
    ({ obj } = await cycle(reg, obj)); // a sees v2
    expect(a.calls()).toBe(2);
  });

  it('runs delete handlers and releases the finalizer when they succeed', async () => {
    const reg = new Registry();
    const cleanup = counting();
    reg.on.delete(R, { id: 'cleanup' }, cleanup.fn);
    const obj = widget({});
    obj.metadata.finalizers = ['other', FIN];
    obj.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
    const { res, obj: after } = await cycle(reg, obj);
    expect(res.cause).toBe('delete');
    expect(cleanup.calls()).toBe(1);
    expect(after.metadata.finalizers).toEqual(['other']);
  });

  it('leaves an object being deleted alone when our finalizer is not on it', async () => {
    const reg = new Registry();
    const cleanup = counting();
    reg.on.delete(R, { id: 'cleanup' }, cleanup.fn);
    const obj = widget({});
    obj.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
    const { res } = await cycle(reg, obj);
    expect(cleanup.calls()).toBe(0);
    expect(res.patch.isEmpty()).toBe(true);
  });

  it('runs resume handlers once per process for objects already handled', async () => {
    const reg = new Registry();
    const resume = counting();
    reg.on.create(R, { id: 'c' }, async () => {});
    reg.on.resume(R, { id: 'r' }, resume.fn);
    let { obj, res } = await cycle(reg, widget({}), true);
    expect(resume.calls()).toBe(0); // a new object is created, not resumed
    ({ obj, res } = await cycle(reg, obj, true));
    expect(res.cause).toBe('resume');
    expect(resume.calls()).toBe(1);
    expect(res.resumed).toBe(true);
    expect(obj.metadata.annotations?.[PROGRESS_ANNOTATION]).toBeUndefined();
  });

  it('rejects duplicate handler ids, which would share progress', () => {
    const reg = new Registry();
    reg.on.create(R, { id: 'x' }, async () => {});
    expect(() => reg.on.update(R, { id: 'x' }, async () => {})).toThrow(/registered twice/);
  });
});
