// The CNI socket's bounds and ownership, on real unix sockets in a temporary folder.
import { connect } from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log/logger.ts';
import type { WireAnswer } from '../src/cni/wire.ts';
import { serveCni, DEFAULT_LIMITS, type CniServer } from './server.ts';

const log = createLogger('test', 'silent');
const dirs: string[] = [];
const servers: CniServer[] = [];

function socketPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'trellis-sock-'));
  dirs.push(d);
  return join(d, 'run', 'cni.sock');
}

async function serve(path: string, answer = 'ok', limits = DEFAULT_LIMITS, delayMs = 0): Promise<CniServer> {
  const s = await serveCni(
    path,
    async (): Promise<WireAnswer> => {
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      return { exitCode: 0, stdout: answer };
    },
    log,
    limits,
  );
  servers.push(s);
  return s;
}

function ask(path: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const c = connect(path, () => c.end(body));
    c.on('data', (d: Buffer) => out.push(d));
    c.on('close', () => resolve(Buffer.concat(out).toString('utf8')));
    c.on('error', reject);
  });
}

const STATUS = JSON.stringify({ env: { CNI_COMMAND: 'STATUS' }, config: {}, mode: 'plugin' });

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close(0);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('CNI socket', () => {
  it('an old server closing after its successor bound the path leaves the successor serving', async () => {
    const path = socketPath();
    const a = await serve(path, 'from A');
    const b = await serve(path, 'from B');
    expect(await ask(path, STATUS)).toBe('0\nfrom B');
    await a.close(1000);
    expect(existsSync(path)).toBe(true);
    expect(await ask(path, STATUS)).toBe('0\nfrom B');
    await b.close(1000);
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a request over the size cap with a CNI error', async () => {
    const path = socketPath();
    await serve(path, 'ok', { ...DEFAULT_LIMITS, maxRequestBytes: 1024 });
    const answer = await ask(path, 'x'.repeat(64 * 1024));
    expect(answer.startsWith('1\n')).toBe(true);
    expect(JSON.parse(answer.slice(2))).toMatchObject({ code: 7 });
    expect(answer).toContain('larger than 1024 bytes');
    expect(await ask(path, STATUS)).toBe('0\nok');
  });

  it('closes a connection that sends nothing', async () => {
    const path = socketPath();
    await serve(path, 'ok', { ...DEFAULT_LIMITS, idleMs: 200 });
    const closedAfter = await new Promise<number>((resolve) => {
      const t = Date.now();
      const c = connect(path);
      c.on('close', () => resolve(Date.now() - t));
      c.on('error', () => undefined);
    });
    expect(closedAfter).toBeLessThan(5000);
  });

  it('holds at most maxConnections open', async () => {
    const path = socketPath();
    await serve(path, 'ok', { ...DEFAULT_LIMITS, maxConnections: 2, idleMs: 5000 });
    const idle = [connect(path), connect(path)];
    await Promise.all(idle.map((c) => new Promise((r) => c.once('connect', r))));
    await new Promise((r) => setTimeout(r, 50));
    const third = await new Promise<string>((resolve) => {
      const out: Buffer[] = [];
      const c = connect(path, () => c.end(STATUS));
      c.on('data', (d: Buffer) => out.push(d));
      c.on('close', () => resolve(Buffer.concat(out).toString('utf8')));
      c.on('error', () => undefined);
    });
    expect(third).toBe('');
    for (const c of idle) c.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(await ask(path, STATUS)).toBe('0\nok');
  });

  it('while draining, a connection made before the path went away gets code 11, not a reset', async () => {
    const path = socketPath();
    const s = await serve(path, 'slow', DEFAULT_LIMITS, 300);
    const inFlight = ask(path, STATUS);
    await new Promise((r) => setTimeout(r, 50));
    // Connected, request not yet sent, when the drain starts.
    const late = await new Promise<import('node:net').Socket>((resolve) => {
      const c = connect(path, () => resolve(c));
    });
    const closing = s.close(5000);
    const answer = await new Promise<string>((resolve) => {
      const out: Buffer[] = [];
      late.on('data', (d: Buffer) => out.push(d));
      late.on('close', () => resolve(Buffer.concat(out).toString('utf8')));
      late.end(STATUS);
    });
    expect(answer.startsWith('1\n')).toBe(true);
    expect(JSON.parse(answer.slice(2))).toMatchObject({ code: 11 });
    expect(await inFlight).toBe('0\nslow');
    await closing;
    expect(existsSync(path)).toBe(false);
  });

  it('drains: close waits for a request in flight, which still gets its answer', async () => {
    const path = socketPath();
    const s = await serve(path, 'slow', DEFAULT_LIMITS, 300);
    const pending = ask(path, STATUS);
    await new Promise((r) => setTimeout(r, 50));
    const t = Date.now();
    await s.close(5000);
    expect(Date.now() - t).toBeGreaterThan(150);
    expect(await pending).toBe('0\nslow');
  });
});
