// The runner against real plugin executables: a tiny recording plugin (like the CNI project's own
// test plugins) that logs what it was given and answers per the spec.
import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ResultCache } from './cache.ts';
import {
  CniInvokeError,
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  gcNetworkList,
  statusNetworkList,
  type NetworkConfigList,
  type RunnerOptions,
  type RuntimeConf,
} from './runner.ts';

const PLUGIN = `#!${process.execPath}
const fs = require('node:fs');
const conf = JSON.parse(fs.readFileSync(0, 'utf8'));
const cmd = process.env.CNI_COMMAND;
fs.appendFileSync(conf.log, JSON.stringify({
  type: conf.type, cmd, args: process.env.CNI_ARGS, ifname: process.env.CNI_IFNAME, conf,
}) + '\\n');
if ((conf.failOn || []).includes(cmd)) {
  process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code: 7, msg: conf.type + ' refuses ' + cmd }));
  process.exit(1);
}
if (cmd === 'ADD') {
  const prev = conf.prevResult || { cniVersion: conf.cniVersion, interfaces: [], ips: [] };
  const out = { ...prev, cniVersion: conf.cniVersion };
  if (conf.addIp) out.ips = [...(prev.ips || []), { address: conf.addIp }];
  if (conf.cniVersion.startsWith('0.')) out.ips = out.ips.map((ip) => ({ ...ip, version: '4' }));
  process.stdout.write(JSON.stringify(out));
}
`;

let dir: string;
let log: string;
let opts: RunnerOptions;
const rt: RuntimeConf = {
  containerId: 'c0ffee',
  netns: '/run/netns/x',
  ifName: 'net1',
  args: [
    ['K8S_POD_NAMESPACE', 'app'],
    ['K8S_POD_NAME', 'p'],
  ],
  capabilityArgs: { ips: ['10.1.0.5/24'], mac: '02:00:00:00:00:05' },
};

function list(
  extra: Partial<NetworkConfigList> = {},
  plugins?: Record<string, unknown>[],
): NetworkConfigList {
  return {
    cniVersion: '1.0.0',
    name: 'net-a',
    plugins: (
      plugins ?? [
        { type: 'rec-a', addIp: '10.1.0.5/24', capabilities: { ips: true } },
        { type: 'rec-b', capabilities: { mac: true } },
      ]
    ).map((p) => ({ log, ...p }) as unknown as NetworkConfigList['plugins'][number]),
    ...extra,
  };
}

interface Call {
  type: string;
  cmd: string;
  args: string;
  ifname: string;
  conf: Record<string, unknown>;
}

function calls(): Call[] {
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Call);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-runner-'));
  log = join(dir, 'calls.log');
  writeFileSync(log, '');
  for (const name of ['rec-a', 'rec-b', 'rec-c']) {
    writeFileSync(join(dir, name), PLUGIN);
    chmodSync(join(dir, name), 0o755);
  }
  opts = { binDirs: [join(dir, 'empty'), dir], cache: new ResultCache(join(dir, 'state')) };
});

describe('addNetworkList', () => {
  it('GIVEN two plugins WHEN ADD THEN prevResult is chained and each gets only the capabilities it declares', async () => {
    const result = await addNetworkList(opts, list(), rt);
    expect(result.ips).toEqual([{ address: '10.1.0.5/24' }]);
    const [a, b] = calls();
    expect(a!.cmd).toBe('ADD');
    expect(a!.args).toBe('K8S_POD_NAMESPACE=app;K8S_POD_NAME=p');
    expect(a!.ifname).toBe('net1');
    expect(a!.conf.name).toBe('net-a');
    expect(a!.conf.runtimeConfig).toEqual({ ips: ['10.1.0.5/24'] });
    expect(a!.conf.prevResult).toBeUndefined();
    expect(b!.conf.runtimeConfig).toEqual({ mac: '02:00:00:00:00:05' });
    expect(b!.conf.prevResult).toEqual({
      cniVersion: '1.0.0',
      interfaces: [],
      ips: [{ address: '10.1.0.5/24' }],
    });
  });

  it('hands prevResult in the list version (0.4.0 results carry ips[].version)', async () => {
    await addNetworkList(opts, list({ cniVersion: '0.4.0' }), rt);
    const b = calls()[1]!;
    expect((b.conf.prevResult as { ips: unknown[] }).ips).toEqual([{ address: '10.1.0.5/24', version: '4' }]);
  });

  it('names the plugin and passes its CNI error code through', async () => {
    const err = await addNetworkList(opts, list({}, [{ type: 'rec-a', failOn: ['ADD'] }]), rt).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CniInvokeError);
    expect((err as CniInvokeError).code).toBe(7);
    expect((err as CniInvokeError).message).toMatch(/rec-a failed \(code 7\): rec-a refuses ADD/);
  });

  it('says which binary is missing from which dirs', async () => {
    await expect(addNetworkList(opts, list({}, [{ type: 'nope' }]), rt)).rejects.toThrow(
      /plugin binary "nope" not found in .*empty:/,
    );
  });
});

describe('DEL and CHECK use what ADD used', () => {
  it('GIVEN the definition changed or vanished after ADD WHEN DEL THEN the cached config runs, in reverse, with prevResult', async () => {
    const result = await addNetworkList(opts, list(), rt);
    writeFileSync(log, '');
    // The NAD was deleted: the caller only knows the network name.
    await delNetworkList(opts, undefined, rt, undefined, 'net-a');
    const c = calls();
    expect(c.map((x) => `${x.cmd} ${x.type}`)).toEqual(['DEL rec-b', 'DEL rec-a']);
    expect(c[0]!.conf.prevResult).toEqual(result);
    expect(c[1]!.conf.runtimeConfig).toEqual({ ips: ['10.1.0.5/24'] });
    expect(await opts.cache!.load({ networkName: 'net-a', containerId: 'c0ffee', ifName: 'net1' })).toBe(
      undefined,
    );
    // A second DEL has nothing to undo and succeeds.
    await delNetworkList(opts, undefined, rt, undefined, 'net-a');
    expect(calls()).toHaveLength(2);
  });

  it('CHECK runs the cached config with the cached result even when the caller has an edited list', async () => {
    const result = await addNetworkList(opts, list(), rt);
    writeFileSync(log, '');
    await checkNetworkList(opts, list({}, [{ type: 'rec-c' }]), rt);
    expect(calls().map((x) => [x.cmd, x.type, x.conf.prevResult])).toEqual([
      ['CHECK', 'rec-a', result],
      ['CHECK', 'rec-b', result],
    ]);
  });

  it('DEL calls every plugin when one fails, throws the first error and keeps the cache for a retry', async () => {
    await addNetworkList(opts, list({}, [{ type: 'rec-a', failOn: ['DEL'] }, { type: 'rec-b' }]), rt);
    writeFileSync(log, '');
    await expect(delNetworkList(opts, undefined, rt, undefined, 'net-a')).rejects.toThrow(
      /rec-a refuses DEL/,
    );
    expect(calls().map((x) => x.type)).toEqual(['rec-b', 'rec-a']);
    expect(await opts.cache!.list('net-a')).toHaveLength(1);
  });

  it('a crash during ADD still leaves the config for DEL (recorded before the first plugin)', async () => {
    await addNetworkList(opts, list({}, [{ type: 'rec-a' }, { type: 'rec-b', failOn: ['ADD'] }]), rt).catch(
      () => undefined,
    );
    const cached = await opts.cache!.load({ networkName: 'net-a', containerId: 'c0ffee', ifName: 'net1' });
    expect(cached?.config.plugins.map((p) => p.type)).toEqual(['rec-a', 'rec-b']);
    expect(cached?.result).toBeUndefined();
  });
});

describe('GC and STATUS', () => {
  it('GC (1.1.0) tells each plugin the valid attachments and prunes the cache of this network only', async () => {
    const l11 = list({ cniVersion: '1.1.0' });
    await addNetworkList(opts, l11, rt);
    await addNetworkList(opts, l11, { ...rt, containerId: 'dead' });
    await addNetworkList(opts, { ...l11, name: 'other' }, { ...rt, containerId: 'dead' });
    writeFileSync(log, '');
    await gcNetworkList(opts, l11, [{ containerID: 'c0ffee', ifname: 'net1' }]);
    const c = calls();
    expect(c.map((x) => `${x.cmd} ${x.type}`)).toEqual(['GC rec-a', 'GC rec-b']);
    expect(c[0]!.conf['cni.dev/valid-attachments']).toEqual([{ containerID: 'c0ffee', ifname: 'net1' }]);
    expect((await opts.cache!.list('net-a')).map((a) => a.containerId)).toEqual(['c0ffee']);
    expect(await opts.cache!.list('other')).toHaveLength(1);
  });

  it('GC before 1.1.0 calls no plugin (they do not know the verb) but still prunes the cache', async () => {
    await addNetworkList(opts, list(), { ...rt, containerId: 'dead' });
    writeFileSync(log, '');
    await gcNetworkList(opts, list(), []);
    expect(calls()).toEqual([]);
    expect(await opts.cache!.list('net-a')).toEqual([]);
  });

  it('STATUS names a delegate whose binary is missing, with code 50', async () => {
    const l = list({}, [{ type: 'rec-a', ipam: { type: 'host-local-missing' } }]);
    const err = await statusNetworkList(opts, l).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniInvokeError);
    expect((err as CniInvokeError).code).toBe(50);
    expect((err as Error).message).toMatch(/network net-a: plugin binary "host-local-missing" not found/);
    await expect(statusNetworkList(opts, list({ cniVersion: '1.1.0' }))).resolves.toBeUndefined();
    expect(calls().map((x) => x.cmd)).toEqual(['STATUS', 'STATUS']);
  });
});

describe('ResultCache', () => {
  it('keeps file names inside its directory whatever the ids contain', async () => {
    const cache = new ResultCache(join(dir, 'c'));
    await cache.save({
      networkName: '../evil',
      containerId: 'a/b',
      ifName: 'x',
      config: list(),
      cniArgs: [],
      capabilityArgs: {},
    });
    expect(readdirSync(join(dir, 'c', 'results'))).toEqual(['..%2fevil-a%2fb-x']);
    expect((await cache.list())[0]!.networkName).toBe('../evil');
  });
  it('stores the libcni cniCacheV1 shape (config as base64)', async () => {
    await addNetworkList(opts, list(), rt);
    const [file] = readdirSync(join(dir, 'state', 'results'));
    const raw = JSON.parse(readFileSync(join(dir, 'state', 'results', file!), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(raw.kind).toBe('cniCacheV1');
    expect(JSON.parse(Buffer.from(raw.config as string, 'base64').toString('utf8'))).toMatchObject({
      name: 'net-a',
    });
  });
});
