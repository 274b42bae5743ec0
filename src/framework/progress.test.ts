import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../kube/object.ts';
import { PROGRESS_ANNOTATION } from './essence.ts';
import { isReady, nextDelayMs, progressAnnotationValue, readProgress, type Progress } from './progress.ts';

const withAnnotation = (value: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'X',
  metadata: { name: 'x', annotations: { [PROGRESS_ANNOTATION]: value } },
});

describe('progress storage', () => {
  it('round-trips through the annotation with sorted handler ids', () => {
    const p: Progress = {
      b: { started: '2026-01-01T00:00:00.000Z', retries: 0, success: true, failure: false },
      a: {
        started: '2026-01-01T00:00:00.000Z',
        retries: 2,
        success: false,
        failure: false,
        delayedUntil: '2026-01-01T00:01:00.000Z',
      },
    };
    const value = progressAnnotationValue(p);
    expect(value?.indexOf('"a"')).toBeLessThan(value?.indexOf('"b"') ?? -1);
    expect(readProgress(withAnnotation(value as string))).toEqual(p);
  });

  it('purges the annotation (null) when nothing is left', () => {
    expect(progressAnnotationValue({})).toBeNull();
  });

  it('treats a mangled annotation as no progress instead of wedging the object', () => {
    expect(readProgress(withAnnotation('{not json'))).toEqual({});
    expect(readProgress(withAnnotation('[1,2]'))).toEqual({});
  });

  it('knows when a delayed handler becomes ready', () => {
    const now = new Date('2026-01-01T00:00:30.000Z');
    const p: Progress = {
      waiting: {
        started: '',
        retries: 1,
        success: false,
        failure: false,
        delayedUntil: '2026-01-01T00:01:00.000Z',
      },
      done: { started: '', retries: 0, success: true, failure: false },
    };
    expect(isReady(p.waiting, now)).toBe(false);
    expect(isReady(p.done, now)).toBe(false);
    expect(isReady(undefined, now)).toBe(true);
    expect(isReady(p.waiting, new Date('2026-01-01T00:01:00.000Z'))).toBe(true);
    expect(nextDelayMs(p, ['waiting', 'done'], now)).toBe(30_000);
    expect(nextDelayMs(p, ['done'], now)).toBeUndefined();
  });
});
