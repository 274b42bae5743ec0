import { spawnSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { alive, killPids } from './process.ts';

describe('process probes', () => {
  it('alive: this process is, no pid and an exited child are not', () => {
    expect(alive(process.pid)).toBe(true);
    expect(alive(undefined)).toBe(false);
    const gone = spawnSync('true').pid;
    expect(alive(gone)).toBe(false);
  });

  it('killPids ends a running process and skips one already gone', async () => {
    const child = spawn('sleep', ['30']);
    const exited = once(child, 'exit');
    killPids([spawnSync('true').pid, child.pid!]);
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
  });
});
