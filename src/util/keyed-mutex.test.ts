import { describe, expect, it } from 'vitest';
import { KeyedMutex } from './keyed-mutex.ts';

describe('KeyedMutex', () => {
  it('runs work on one key one at a time, in order, and other keys alongside', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const step = (key: string, id: string) =>
      m.run(key, async () => {
        log.push(`start ${id}`);
        await new Promise((r) => setImmediate(r));
        log.push(`end ${id}`);
      });
    await Promise.all([step('a', 'a1'), step('a', 'a2'), step('b', 'b1')]);
    expect(log.indexOf('end a1')).toBeLessThan(log.indexOf('start a2'));
    expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1'));
    await expect(m.run('a', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await m.run('a', async () => 7)).toBe(7);
  });
});
