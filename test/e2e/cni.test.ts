// CNI verbs driven through the real compiled plugin executable, a real agent process and real
// pod network namespaces: every verb, every error path the shim and agent own, and DEL's
// tolerance of things already gone.
import { describe, expect, it } from 'vitest';
import { IPBlockResource } from '../../src/api/group.ts';
import type { IPBlock } from '../../src/api/ipam.ts';
import { BLOCK_POOL_LABEL } from '../../src/api/ipam.ts';
import { useAgentHarness } from '../support/agent-harness.ts';
import { cni, delNetns, inPod, ipOf, pluginConf, podArgs, sh, trySh } from './fixtures/cni-harness.ts';

const h = useAgentHarness({ name: 'tcv-verbs', v4: '10.250.16.0/20', v6: 'fd00:250::1:0/112' });
const { pod, heldBy } = h;

async function holderOf(ip: string): Promise<{ pod: string; namespace: string } | undefined> {
  const blocks = await h.kube.listAll<IPBlock>(IPBlockResource, undefined, {
    labelSelector: `${BLOCK_POOL_LABEL}`,
  });
  for (const b of blocks.items) {
    const a = b.spec?.allocations?.[ip];
    if (a) return { pod: a.pod, namespace: a.namespace };
  }
  return undefined;
}

describe('VERSION', () => {
  it('is answered by the executable itself, even with no agent', async () => {
    const r = await cni({ command: 'VERSION', config: { cniVersion: '1.0.0' } });
    expect(r.code).toBe(0);
    expect(r.json).toEqual({
      cniVersion: '1.0.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
  });
});

describe('ADD, CHECK, DEL', () => {
  it('wires a dual-stack pod, records who holds the addresses, and the node reaches it', async () => {
    const p = pod('add1');
    const conf = pluginConf(h.agent, h.net);
    const r = await cni({
      command: 'ADD',
      containerID: 'add1',
      netns: p.path,
      args: podArgs('default', 'add1'),
      config: conf,
    });
    expect(r.code, r.stdout).toBe(0);
    const result = r.json as {
      cniVersion: string;
      interfaces: { name: string; mac: string; sandbox?: string }[];
      ips: { address: string; gateway: string; interface: number }[];
      routes: { dst: string; gw: string }[];
    };
    expect(result.cniVersion).toBe('1.0.0');
    expect(result.interfaces[1]).toMatchObject({ name: 'eth0', sandbox: p.path });
    // The node end is not in the sandbox: the field is absent (not null).
    expect(result.interfaces[0]).not.toHaveProperty('sandbox');
    const v4 = result.ips.find((i) => !i.address.includes(':'))!;
    const v6 = result.ips.find((i) => i.address.includes(':'))!;
    expect(v4.address).toMatch(/^10\.250\.(1[6-9]|2\d|3[01])\.\d+\/32$/);
    expect(v6.address).toMatch(/^fd00:250::1:[0-9a-f]+\/128$/);
    expect(v4.interface).toBe(1);
    expect(result.routes).toEqual(
      expect.arrayContaining([
        { dst: '0.0.0.0/0', gw: '169.254.1.1' },
        { dst: '::/0', gw: 'fe80::1' },
      ]),
    );

    const ip4 = v4.address.split('/')[0]!;
    const ip6 = v6.address.split('/')[0]!;
    const addrs = inPod(p.ns, 'ip', ['-o', 'addr', 'show', 'dev', 'eth0']).out;
    expect(addrs).toContain(`${ip4}/32`);
    expect(addrs).toContain(`${ip6}/128`);
    expect(inPod(p.ns, 'ip', ['link', 'show', 'eth0']).out).toContain('mtu 1450');
    expect(trySh('ping', ['-c1', '-W2', ip4]).ok).toBe(true);
    expect(trySh('ping', ['-6', '-c1', '-W2', ip6]).ok).toBe(true);
    expect(await holderOf(ip4)).toEqual({ pod: 'add1', namespace: 'default' });

    // CHECK with the ADD result as prevResult: the kernel matches.
    const ok = await cni({
      command: 'CHECK',
      containerID: 'add1',
      netns: p.path,
      config: { ...conf, prevResult: result },
    });
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toBe('');

    // Spec: a second ADD for the same (container, ifname) fails, and leaves the first one whole.
    const again = await cni({
      command: 'ADD',
      containerID: 'add1',
      netns: p.path,
      args: podArgs('default', 'add1'),
      config: conf,
    });
    expect(again.code, again.stdout).toBe(1);
    expect(String(again.json?.msg)).toMatch(/add1.*already has eth0 attached/);
    expect(trySh('ping', ['-c1', '-W2', ip4]).ok).toBe(true);
    expect(await holderOf(ip4)).toEqual({ pod: 'add1', namespace: 'default' });

    // CHECK notices a removed address.
    sh('ip', ['netns', 'exec', p.ns, 'ip', 'addr', 'del', `${ip4}/32`, 'dev', 'eth0']);
    const bad = await cni({
      command: 'CHECK',
      containerID: 'add1',
      netns: p.path,
      config: { ...conf, prevResult: result },
    });
    expect(bad.code).toBe(1);
    expect(String(bad.json?.msg)).toContain(`lacks address ${ip4}`);

    // DEL removes the interface and host route and frees the addresses; a second DEL is fine.
    const del = await cni({ command: 'DEL', containerID: 'add1', netns: p.path, config: conf });
    expect(del.code, del.stdout).toBe(0);
    expect(inPod(p.ns, 'ip', ['link', 'show', 'eth0']).ok).toBe(false);
    expect(sh('ip', ['route', 'show', `${ip4}/32`]).trim()).toBe('');
    expect(await holderOf(ip4)).toBeUndefined();
    const del2 = await cni({ command: 'DEL', containerID: 'add1', netns: p.path, config: conf });
    expect(del2.code, del2.stdout).toBe(0);
  });

  it('DEL succeeds when the netns is already gone, and still frees the address', async () => {
    const p = pod('gone1');
    const conf = pluginConf(h.agent, h.net);
    const r = await cni({
      command: 'ADD',
      containerID: 'gone1',
      netns: p.path,
      args: podArgs('default', 'gone1'),
      config: conf,
    });
    expect(r.code, r.stdout).toBe(0);
    const ip = ipOf(r.json);
    delNetns(p.ns);
    const del = await cni({ command: 'DEL', containerID: 'gone1', netns: p.path, config: conf });
    expect(del.code, del.stdout).toBe(0);
    expect(await holderOf(ip)).toBeUndefined();
  });

  it('honours the static IP annotation of the pod', async () => {
    // statics come from blocks a node holds (a static address never claims one): one ADD makes sure
    // the test node holds a block, and the static address is picked inside it
    const seed = pod('staticseed');
    const seeded = await cni({
      command: 'ADD',
      containerID: 'staticseed',
      netns: seed.path,
      args: podArgs('default', 'staticseed'),
      config: pluginConf(h.agent, h.net),
    });
    expect(seeded.code, seeded.stdout).toBe(0);
    const seedIP = ipOf(seeded.json);
    const own = (await h.kube.listAll<IPBlock>(IPBlockResource)).items.find(
      (b) => b.spec?.allocations?.[seedIP],
    );
    const base = own!.spec!.cidr.split('/')[0]!.split('.').map(Number);
    const staticIP = [...base.slice(0, 3), base[3]! + 13].join('.');
    const name = await h.createPod('tcv-static', { 'network.trellis.dev/ip': staticIP });
    const p = pod('static1');
    const conf = pluginConf(h.agent, h.net);
    const r = await cni({
      command: 'ADD',
      containerID: 'static1',
      netns: p.path,
      args: podArgs('default', name),
      config: conf,
    });
    expect(r.code, r.stdout).toBe(0);
    expect((r.json as { ips: { address: string }[] }).ips.map((i) => i.address)).toContain(`${staticIP}/32`);
    expect((await cni({ command: 'DEL', containerID: 'static1', netns: p.path, config: conf })).code).toBe(0);
    expect(
      (await cni({ command: 'DEL', containerID: 'staticseed', netns: seed.path, config: conf })).code,
    ).toBe(0);
  });

  it('rejects a malformed static IP annotation with code 7 naming the annotation', async () => {
    const name = await h.createPod('tcv-badstatic', { 'network.trellis.dev/ip': '10.250.20.999' });
    const p = pod('badstatic');
    const r = await cni({
      command: 'ADD',
      containerID: 'badstatic',
      netns: p.path,
      args: podArgs('default', name),
      config: pluginConf(h.agent, h.net),
    });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 7 });
    expect(String(r.json?.msg)).toContain('network.trellis.dev/ip');
    expect(inPod(p.ns, 'ip', ['link', 'show', 'eth0']).ok).toBe(false);
  });

  it('releases the addresses when wiring fails after IPAM (the pod already has an eth0 of its own)', async () => {
    const p = pod('fail1');
    sh('ip', ['netns', 'exec', p.ns, 'ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
    const r = await cni({
      command: 'ADD',
      containerID: 'fail1',
      netns: p.path,
      args: podArgs('default', 'fail1'),
      config: pluginConf(h.agent, h.net),
    });
    expect(r.code).toBe(1);
    expect(String(r.json?.msg)).toContain('fail1');
    expect(await heldBy('fail1')).toEqual([]);
    // The interface that was there before is left alone.
    expect(inPod(p.ns, 'ip', ['link', 'show', 'eth0']).out).toContain('eth0@eth0p');
  });

  it('refuses an interface name the kernel would not take with code 4, before IPAM', async () => {
    const p = pod('fail2');
    const r = await cni({
      command: 'ADD',
      containerID: 'fail2',
      netns: p.path,
      ifname: 'eth0-far-too-long-name',
      args: podArgs('default', 'fail2'),
      config: pluginConf(h.agent, h.net),
    });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 4 });
    expect(String(r.json?.msg)).toContain('CNI_IFNAME');
    expect(await heldBy('fail2')).toEqual([]);
  });

  it('answers an older spec version in its own result format', async () => {
    const p = pod('old1');
    const conf = pluginConf(h.agent, h.net, '0.4.0');
    const r = await cni({
      command: 'ADD',
      containerID: 'old1',
      netns: p.path,
      args: podArgs('default', 'old1'),
      config: conf,
    });
    expect(r.code, r.stdout).toBe(0);
    expect(r.json).toMatchObject({ cniVersion: '0.4.0' });
    expect((r.json as { ips: { version: string }[] }).ips.map((i) => i.version).sort()).toEqual(['4', '6']);
    expect((await cni({ command: 'DEL', containerID: 'old1', netns: p.path, config: conf })).code).toBe(0);
  });
});

describe('STATUS and GC', () => {
  it('STATUS succeeds once the node is programmed', async () => {
    const r = await cni({ command: 'STATUS', config: pluginConf(h.agent, h.net, '1.1.0') });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('GC releases attachments that are not valid and keeps the valid ones', async () => {
    const a = pod('gca');
    const b = pod('gcb');
    const conf = pluginConf(h.agent, h.net, '1.1.0');
    const ra = await cni({
      command: 'ADD',
      containerID: 'gca',
      netns: a.path,
      args: podArgs('default', 'gca'),
      config: conf,
    });
    const rb = await cni({
      command: 'ADD',
      containerID: 'gcb',
      netns: b.path,
      args: podArgs('default', 'gcb'),
      config: conf,
    });
    expect(ra.code, ra.stdout).toBe(0);
    expect(rb.code, rb.stdout).toBe(0);
    const ipA = ipOf(ra.json);
    const ipB = ipOf(rb.json);
    const gc = await cni({
      command: 'GC',
      config: { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'gca', ifname: 'eth0' }] },
    });
    expect(gc.code, gc.stdout).toBe(0);
    expect(await holderOf(ipA)).toEqual({ pod: 'gca', namespace: 'default' });
    expect(await holderOf(ipB)).toBeUndefined();
    // The leaked node-side veth of the invalid attachment is gone too; the valid pod still works.
    expect(inPod(b.ns, 'ip', ['link', 'show', 'eth0']).ok).toBe(false);
    expect(trySh('ping', ['-c1', '-W2', ipA]).ok).toBe(true);
    expect((await cni({ command: 'DEL', containerID: 'gca', netns: a.path, config: conf })).code).toBe(0);
  });

  it('GC without a valid-attachments list is an invalid config (7)', async () => {
    const r = await cni({ command: 'GC', config: pluginConf(h.agent, h.net, '1.1.0') });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 7 });
  });
});

describe('errors', () => {
  it('malformed JSON on stdin is code 6', async () => {
    const r = await cni({
      command: 'ADD',
      containerID: 'x',
      netns: '/run/netns/none',
      config: '{"cniVersion": "1.0.0", ',
    });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 6 });
  });

  it('an unknown cniVersion is code 1 and names the supported versions', async () => {
    const r = await cni({
      command: 'ADD',
      containerID: 'x',
      netns: '/run/netns/none',
      config: { ...pluginConf(h.agent, h.net), cniVersion: '7.0.0' },
    });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 1, cniVersion: '7.0.0' });
    expect(String(r.json?.msg)).toContain('1.1.0');
  });

  it('missing environment is code 4 naming the variable', async () => {
    const r = await cni({ command: 'ADD', containerID: 'x', config: pluginConf(h.agent, h.net) });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 4 });
    expect(String(r.json?.msg)).toContain('CNI_NETNS');
    const noCmd = await cni({ command: '', config: pluginConf(h.agent, h.net) });
    expect(noCmd.json).toMatchObject({ code: 4 });
    expect(String(noCmd.json?.msg)).toContain('CNI_COMMAND');
  });

  it('ADD into a netns that does not exist is code 3', async () => {
    const r = await cni({
      command: 'ADD',
      containerID: 'nons',
      netns: '/run/netns/tcv-does-not-exist',
      args: podArgs('default', 'nons'),
      config: pluginConf(h.agent, h.net),
    });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 3 });
  });

  it('ADD with the agent down fails fast with code 11 naming the socket; DEL still succeeds; STATUS says 50', async () => {
    const socket = `${h.agent.dir}/run/nobody-here.sock`;
    const conf = { ...pluginConf(h.agent, h.net), socket };
    const p = pod('down1');
    const add = await cni({ command: 'ADD', containerID: 'down1', netns: p.path, config: conf });
    expect(add.code).toBe(1);
    expect(add.json).toMatchObject({ code: 11 });
    expect(String(add.json?.msg)).toContain(socket);
    const del = await cni({ command: 'DEL', containerID: 'down1', netns: p.path, config: conf });
    expect(del.code).toBe(0);
    const status = await cni({ command: 'STATUS', config: { ...conf, cniVersion: '1.1.0' } });
    expect(status.json).toMatchObject({ code: 50 });
  });

  it('CHECK without prevResult is an invalid config (7)', async () => {
    const p = pod('chk0');
    const r = await cni({
      command: 'CHECK',
      containerID: 'chk0',
      netns: p.path,
      config: pluginConf(h.agent, h.net),
    });
    expect(r.json).toMatchObject({ code: 7 });
  });
});
