import { describe, expect, it } from 'vitest';
import { orphanOf } from './block.ts';
import { allocation as alloc } from './fixtures.ts';

describe('orphanOf: which allocations no live pod holds', () => {
  it('keys by UID: a pod recreated under the same name does not inherit the old address', () => {
    const orphan = orphanOf([{ namespace: 'ns', name: 'web-0', uid: 'uid-2' }]);
    expect(orphan(alloc('web-0', 'uid-1'))).toBe(true);
    expect(orphan(alloc('web-0', 'uid-2'))).toBe(false);
  });

  it('releases allocations of pods that are gone, and falls back to the name where no UID is known', () => {
    const orphan = orphanOf([
      { namespace: 'ns', name: 'a', uid: 'u-a' },
      { namespace: 'ns', name: 'b' },
    ]);
    expect(orphan(alloc('gone', 'u-x'))).toBe(true);
    expect(orphan(alloc('a'))).toBe(false); // recorded before UIDs were
    expect(orphan(alloc('b', 'u-old'))).toBe(false); // the live pod was listed without a UID
    expect(orphanOf([{ namespace: 'other', name: 'a', uid: 'u-a' }])(alloc('a', 'u-a'))).toBe(true);
  });
});
