import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { backoffSeconds } from '../util/backoff.ts';
import { PermanentError } from './errors/permanent-error.ts';
import { TemporaryError } from './errors/temporary-error.ts';
import { executeHandler, recordAfter } from './executor.ts';
import type { HandlerKwargs } from './handler.ts';
import { Patch } from './patch.ts';

const kwargs = (): HandlerKwargs => ({
  body: { apiVersion: 'v1', kind: 'X', metadata: { name: 'a' } },
  spec: {},
  status: {},
  meta: { name: 'a' },
  patch: new Patch(),
  logger: pino({ level: 'silent' }),
  retry: 0,
  reason: 'create',
  diff: [],
  old: undefined,
  new: undefined,
  signal: new AbortController().signal,
});
const policy = { retries: Infinity, backoff: 5, backoffCap: 300, timeout: undefined };

describe('the executor', () => {
  it('returns success with the handler result', async () => {
    const o = await executeHandler(async () => 42, kwargs(), policy, undefined);
    expect(o).toMatchObject({ kind: 'success', result: 42 });
  });

  it('never throws: a TemporaryError keeps its delay, a PermanentError is permanent', async () => {
    const t = await executeHandler(
      async () => {
        throw new TemporaryError('later', 7);
      },
      kwargs(),
      policy,
      undefined,
    );
    expect(t).toMatchObject({ kind: 'temporary', delaySeconds: 7, message: 'later' });
    const p = await executeHandler(
      async () => {
        throw new PermanentError('never');
      },
      kwargs(),
      policy,
      undefined,
    );
    expect(p).toMatchObject({ kind: 'permanent', message: 'never' });
  });

  it('retries unknown errors with capped exponential backoff', async () => {
    const delays: number[] = [];
    for (let retry = 0; retry < 10; retry++) {
      const rec = retry
        ? { started: new Date().toISOString(), retries: retry, success: false, failure: false }
        : undefined;
      const o = await executeHandler(
        async () => {
          throw new Error('boom');
        },
        kwargs(),
        policy,
        rec,
      );
      if (o.kind !== 'temporary') throw new Error(`expected temporary, got ${o.kind}`);
      delays.push(o.delaySeconds);
    }
    expect(delays).toEqual([5, 10, 20, 40, 80, 160, 300, 300, 300, 300]);
    expect(backoffSeconds(1, 100, 300)).toBe(300);
  });

  it('turns the last allowed retry into a permanent failure', async () => {
    const limited = { ...policy, retries: 3 };
    const rec = { started: new Date().toISOString(), retries: 2, success: false, failure: false };
    const o = await executeHandler(
      async () => {
        throw new Error('still broken');
      },
      kwargs(),
      limited,
      rec,
    );
    expect(o).toMatchObject({ kind: 'permanent' });
    expect(o.kind === 'permanent' && o.message).toContain('gave up after 3 attempts');
  });

  it('turns a handler past its timeout into a permanent failure without running it', async () => {
    let ran = false;
    const rec = {
      started: new Date(Date.now() - 120_000).toISOString(),
      retries: 1,
      success: false,
      failure: false,
    };
    const o = await executeHandler(
      async () => {
        ran = true;
      },
      kwargs(),
      { ...policy, timeout: 60 },
      rec,
    );
    expect(o).toMatchObject({ kind: 'permanent', message: 'timed out after 60s' });
    expect(ran).toBe(false);
  });

  it('records retries and the delay in the progress record', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const rec = recordAfter(
      undefined,
      { kind: 'temporary', delaySeconds: 10, message: 'x', error: undefined, durationMs: 1 },
      now,
    );
    expect(rec).toEqual({
      started: '2026-01-01T00:00:00.000Z',
      delayedUntil: '2026-01-01T00:00:10.000Z',
      retries: 1,
      success: false,
      failure: false,
      message: 'x',
    });
    const done = recordAfter(rec, { kind: 'success', result: 1, durationMs: 1 }, now + 20_000, 'd');
    expect(done).toMatchObject({
      started: rec.started,
      success: true,
      failure: false,
      retries: 1,
      digest: 'd',
    });
  });
});
