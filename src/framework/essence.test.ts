import { describe, expect, it } from 'vitest';
import {
  LAST_HANDLED_ANNOTATION,
  PROGRESS_ANNOTATION,
  diff,
  diffTouches,
  essenceOf,
  getField,
} from './essence.ts';

describe('essence and field diffs', () => {
  it('ignores the framework annotations and kubectl last-applied when computing the essence', () => {
    const e = essenceOf({
      apiVersion: 'v1',
      kind: 'X',
      metadata: {
        name: 'a',
        annotations: { [PROGRESS_ANNOTATION]: '{}', [LAST_HANDLED_ANNOTATION]: '{}', keep: 'me' },
        resourceVersion: '5',
      },
      spec: { a: 1 },
    });
    expect(e).toEqual({ metadata: { annotations: { keep: 'me' } }, spec: { a: 1 } });
  });

  it('reports leaf changes with dotted paths', () => {
    const d = diff(
      { spec: { backend: { mtu: 1450, mode: 'vxlan' }, pools: [1] } },
      { spec: { backend: { mtu: 1400, mode: 'vxlan' }, pools: [1], x: true } },
    );
    expect(d).toEqual([
      { op: 'change', path: 'spec.backend.mtu', old: 1450, new: 1400 },
      { op: 'add', path: 'spec.x', old: undefined, new: true },
    ]);
  });

  it('treats key order as irrelevant', () => {
    expect(diff({ a: 1, b: 2 }, { b: 2, a: 1 })).toEqual([]);
  });

  it('matches a field filter on the field, its children and its parents', () => {
    const d = diff({ spec: { backend: { mtu: 1 } } }, { spec: { backend: { mtu: 2 } } });
    expect(diffTouches(d, 'spec.backend')).toBe(true);
    expect(diffTouches(d, 'spec.backend.mtu')).toBe(true);
    expect(diffTouches(d, 'spec.backend.mtu.x')).toBe(true);
    expect(diffTouches(d, 'spec.pools')).toBe(false);
    expect(
      diffTouches(diff({ spec: { a: 1 } }, { spec: { a: 1 }, metadata: { labels: { x: 'y' } } }), 'spec'),
    ).toBe(false);
  });

  it('reads dotted paths and answers undefined for missing steps', () => {
    expect(getField({ spec: { a: { b: 3 } } }, 'spec.a.b')).toBe(3);
    expect(getField({ spec: { a: 5 } }, 'spec.a.b')).toBeUndefined();
  });
});
