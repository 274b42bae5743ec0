// The plugin executable against the agent's real socket server (agent/server.ts, with a handler
// that records what arrives): what a runtime sees for every path the forwarder owns, run for the
// shipped C forwarder (dist/trellis-cni) and the TypeScript shim it replaced (cni/main.ts built
// with Bun), so the two stay interchangeable. Needs no network namespace: the full ADD path with
// the real agent is test/e2e/cni.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveCni, type CniServer } from '../../agent/server.ts';
import { REPO_ROOT } from '../../src/controlplane/binaries.ts';
import { createLogger } from '../../src/log/logger.ts';
import { SUPPORTED_VERSIONS } from '../../src/cni/version.ts';
import type { WireAnswer, WireRequest } from '../../src/cni/wire.ts';
import { runPlugin, type CniRun } from '../e2e/fixtures/cni-harness.ts';

const C_FORWARDER = resolve(REPO_ROOT, 'dist/trellis-cni');
const BUN_SHIM = resolve(REPO_ROOT, 'dist/trellis-cni-bun');

let dir: string;
let socket: string;
let server: CniServer | undefined;
const seen: WireRequest[] = [];
let handler: (req: WireRequest) => Promise<WireAnswer> = () => Promise.resolve({ exitCode: 0, stdout: '' });

beforeAll(async () => {
  execFileSync('bash', [resolve(REPO_ROOT, 'hack/build-cni.sh'), '--candidates'], { stdio: 'inherit' });
  dir = mkdtempSync(join(tmpdir(), 'tcv-fwd-'));
  chmodSync(dir, 0o755); // the permission test runs the plugin as nobody
  socket = join(dir, 'run', 'cni.sock');
  server = await serveCni(
    socket,
    (req) => {
      seen.push(req);
      return handler(req);
    },
    createLogger('test', 'silent'),
  );
});

afterAll(async () => {
  await server?.close(0);
  rmSync(dir, { recursive: true, force: true });
});

const POD_ENV = { CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/p1', CNI_IFNAME: 'eth0' };

function run(
  bin: string,
  command: string,
  config: unknown,
  env: Record<string, string> = POD_ENV,
): Promise<CniRun> {
  const text = typeof config === 'string' ? config : JSON.stringify(config);
  return runPlugin(bin, { CNI_COMMAND: command, ...env }, text);
}

describe.each([
  ['the C forwarder (shipped)', C_FORWARDER],
  ['the TypeScript shim (Bun)', BUN_SHIM],
])('%s', (_name, bin) => {
  const conf = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    cniVersion: '1.0.0',
    name: 'trellis',
    type: 'trellis',
    socket,
    ...extra,
  });

  it('forwards {env, config, mode} and prints the agent answer unchanged with its exit code', async () => {
    handler = () => Promise.resolve({ exitCode: 0, stdout: '{"cniVersion":"1.0.0","ips":[]}' });
    seen.length = 0;
    const config = conf({ mtu: 1450, args: { note: 'caf\u00e9 "q" \\ \n' } });
    const r = await run(bin, 'ADD', config, {
      ...POD_ENV,
      CNI_ARGS: 'K8S_POD_NAME=a;X="y"',
      CNI_PATH: '/opt',
    });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toBe('{"cniVersion":"1.0.0","ips":[]}\n');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      env: { CNI_COMMAND: 'ADD', ...POD_ENV, CNI_ARGS: 'K8S_POD_NAME=a;X="y"', CNI_PATH: '/opt' },
      config,
      mode: 'plugin',
    });
    expect(Object.keys(seen[0]!.env).sort()).toEqual(
      ['CNI_COMMAND', ...Object.keys(POD_ENV), 'CNI_ARGS', 'CNI_PATH'].sort(),
    );

    handler = () => Promise.resolve({ exitCode: 1, stdout: '{"cniVersion":"1.0.0","code":7,"msg":"no"}' });
    const bad = await run(bin, 'ADD', conf());
    expect(bad.code).toBe(1);
    expect(bad.json).toEqual({ cniVersion: '1.0.0', code: 7, msg: 'no' });
  });

  it('forwards in ipam mode, to the IPAM section socket, when another plugin names trellis as its IPAM', async () => {
    handler = () => Promise.resolve({ exitCode: 0, stdout: '' });
    seen.length = 0;
    const config = {
      cniVersion: '1.0.0',
      name: 'sig',
      type: 'macvlan',
      socket: join(dir, 'nowhere.sock'),
      ipam: { type: 'trellis', pool: 'sig', socket },
    };
    const r = await run(bin, 'DEL', config);
    expect(r.code, r.stdout).toBe(0);
    expect(seen.map((s) => s.mode)).toEqual(['ipam']);
  });

  it('answers VERSION itself, in the configuration version, even with no agent and no JSON', async () => {
    const r = await run(bin, 'VERSION', { cniVersion: '0.4.0' }, {});
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '0.4.0', supportedVersions: [...SUPPORTED_VERSIONS] });
    const junk = await run(bin, 'VERSION', 'not json', {});
    expect(junk.json).toMatchObject({ cniVersion: '1.1.0' });
  });

  it.each([
    ['truncated JSON', '{"cniVersion": "1.0.0", '],
    ['trailing garbage', '{"cniVersion": "1.0.0"} x'],
    ['an array', '[{"cniVersion": "1.0.0"}]'],
    ['single quotes', "{'cniVersion': '1.0.0'}"],
    ['a bad escape', '{"cniVersion": "1.0.0", "name": "\\x"}'],
    ['a raw newline in a string', '{"cniVersion": "1.0.\n0"}'],
    ['a leading zero', '{"cniVersion": "1.0.0", "mtu": 01500}'],
    ['nothing', ''],
  ])('rejects %s on stdin with code 6', async (_what, text) => {
    const r = await run(bin, 'ADD', text);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 6, cniVersion: '1.1.0' });
    expect(String(r.json?.msg)).toContain('network configuration on stdin');
  });

  it('rejects an unknown cniVersion with code 1 naming the supported ones, and none with code 7', async () => {
    const r = await run(bin, 'ADD', conf({ cniVersion: '7.0.0' }));
    expect(r.json).toMatchObject({ code: 1 });
    expect(String(r.json?.msg)).toContain('"7.0.0"');
    expect(String(r.json?.msg)).toContain('1.1.0');
    const none = await run(bin, 'ADD', { name: 'x', type: 'trellis', socket });
    expect(none.json).toMatchObject({ code: 7, cniVersion: '1.1.0' });
    expect(String(none.json?.msg)).toContain('cniVersion');
  });

  it('names the missing environment variable or command with code 4', async () => {
    const r = await run(bin, 'ADD', conf(), { CNI_CONTAINERID: 'x' });
    expect(r.json).toMatchObject({ code: 4 });
    expect(String(r.json?.msg)).toBe('ADD needs CNI_NETNS, CNI_IFNAME in the environment');
    const del = await run(bin, 'DEL', conf(), { CNI_CONTAINERID: 'x', CNI_IFNAME: '' });
    expect(String(del.json?.msg)).toBe('DEL needs CNI_IFNAME in the environment');
    const none = await run(bin, '', conf());
    expect(String(none.json?.msg)).toContain('CNI_COMMAND is not set');
    const odd = await run(bin, 'ATTACH', conf());
    expect(odd.json).toMatchObject({ code: 4 });
    expect(String(odd.json?.msg)).toContain('"ATTACH"');
  });

  it('with no agent: ADD fails with 11 naming the socket, DEL succeeds, STATUS says 50', async () => {
    const gone = join(dir, 'nobody-here.sock');
    const add = await run(bin, 'ADD', conf({ socket: gone }));
    expect(add.code).toBe(1);
    expect(add.json).toMatchObject({ code: 11, cniVersion: '1.0.0' });
    expect(String(add.json?.msg)).toContain(gone);
    expect((await run(bin, 'DEL', conf({ socket: gone }))).code).toBe(0);
    const status = await run(bin, 'STATUS', conf({ socket: gone, cniVersion: '1.1.0' }));
    expect(status.json).toMatchObject({ code: 50 });
  });

  it('reports an agent answer that is not the wire format as an I/O failure (5)', async () => {
    handler = () => Promise.resolve({ exitCode: 7 as 0, stdout: 'oops' });
    const r = await run(bin, 'ADD', conf());
    expect(r.json).toMatchObject({ code: 5 });
    expect(String(r.json?.msg)).toContain('malformed agent answer');
  });
});

describe('the C forwarder', () => {
  it('cannot reach the root-only socket as another user (code 5, permission denied)', () => {
    // The plugin as uid/gid 65534: the socket's folder is 0700 root, the socket 0600.
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', C_FORWARDER], {
      env: { CNI_COMMAND: 'ADD', ...POD_ENV },
      input: JSON.stringify({ cniVersion: '1.0.0', name: 'trellis', type: 'trellis', socket }),
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 5 });
    expect(r.stdout).toContain('Permission denied');
  });

  it('answers in a version it speaks (the configuration one when supported, else 1.1.0), but code 1 in the one asked', async () => {
    const r = await run(C_FORWARDER, 'ADD', { cniVersion: '7.0.0', type: 'trellis', socket });
    expect(r.json).toMatchObject({ code: 1, cniVersion: '7.0.0' });
    const v = await run(C_FORWARDER, 'VERSION', { cniVersion: '7.0.0' }, {});
    expect(v.json).toMatchObject({ cniVersion: '1.1.0' });
    const e = await run(C_FORWARDER, 'ADD', { cniVersion: '0.4.0', type: 'trellis', socket }, {});
    expect(e.json).toMatchObject({ code: 4, cniVersion: '0.4.0' });
  });

  it('tells the agent its deadline, and gives up at it with code 11 when the agent never answers', async () => {
    handler = () => Promise.resolve({ exitCode: 0, stdout: '' });
    seen.length = 0;
    const conf = { cniVersion: '1.0.0', name: 'trellis', type: 'trellis', socket };
    await run(C_FORWARDER, 'ADD', conf);
    await run(C_FORWARDER, 'ADD', { ...conf, timeoutSeconds: 7 });
    await run(C_FORWARDER, 'ADD', { ...conf, timeoutSeconds: 7.5 });
    await run(C_FORWARDER, 'ADD', { ...conf, timeoutSeconds: 111 });
    // Default 100 s; whole seconds in 1..110 only (below kubelet's 2-minute runtime timeout).
    expect(seen.map((r) => (r as { timeoutMs?: number }).timeoutMs)).toEqual([
      100_000, 7000, 100_000, 100_000,
    ]);

    let release: () => void = () => undefined;
    handler = () =>
      new Promise((res) => {
        release = () => res({ exitCode: 0, stdout: '' });
      });
    const r = await run(C_FORWARDER, 'ADD', { ...conf, timeoutSeconds: 1 });
    release();
    expect(r.code).toBe(1);
    expect(r.json).toEqual({
      cniVersion: '1.0.0',
      code: 11,
      msg: `trellis agent at ${socket} did not answer ADD within 1 s`,
    });
  });

  it('refuses a configuration over 4 MiB and one nested absurdly deep with code 6', async () => {
    const huge = JSON.stringify({ cniVersion: '1.0.0', pad: 'x'.repeat(5 << 20) });
    const r = await run(C_FORWARDER, 'ADD', huge);
    expect(r.json).toMatchObject({ code: 6 });
    expect(String(r.json?.msg)).toContain('larger than');
    const deep = `{"cniVersion":"1.0.0","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const d = await run(C_FORWARDER, 'ADD', deep);
    expect(d.json).toMatchObject({ code: 6 });
    expect(String(d.json?.msg)).toContain('nested too deeply');
  });

  it('is a static executable that needs no loader or library on the node', () => {
    const r = spawnSync('ldd', [C_FORWARDER], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toContain('not a dynamic executable');
  });

  it('accepts a socket path written with JSON escapes and refuses one that is not a string (7)', async () => {
    handler = () => Promise.resolve({ exitCode: 0, stdout: '' });
    const escaped = JSON.stringify({ cniVersion: '1.0.0', type: 'trellis', socket }).replace(/\//g, '\\/');
    expect((await run(C_FORWARDER, 'ADD', escaped)).code).toBe(0);
    const r = await run(C_FORWARDER, 'ADD', { cniVersion: '1.0.0', type: 'trellis', socket: 5 });
    expect(r.json).toMatchObject({ code: 7 });
    expect(String(r.json?.msg)).toContain('socket');
  });
});
