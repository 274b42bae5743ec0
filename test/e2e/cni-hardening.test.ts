// The CNI surface as an attacker or a careless config would use it, through the real compiled
// plugin and a real agent in real namespaces: request values that used to reach a shell, the
// spec's rules for repeated ADD, GC of another network, paths that are not namespaces and
// unsupported versions, and the agent's bounds (request size, idle connections, plugin deadline,
// socket succession, draining shutdown).
import { execFileSync } from 'node:child_process';
import { createServer, connect, type Server } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localInterfaces } from '../../src/dataplane/netns.ts';
import { hostVethName } from '../../src/dataplane/podnet.ts';
import { useAgentHarness } from '../support/agent-harness.ts';
import { kubeconfigPath } from '../support/kube.ts';
import {
  askSocket,
  cleanupDir,
  cni,
  inPod,
  ipOf,
  pluginConf,
  podArgs,
  PREFIX,
  startAgent,
  trySh,
  type Agent,
} from './fixtures/cni-harness.ts';

const h = useAgentHarness({ name: 'tcv-hard', v4: '10.250.48.0/20', v6: 'fd00:250::3:0/112' });
const { pod, heldBy, scratch } = h;

describe('no request value reaches a shell', () => {
  it('an mtu carrying a heredoc end marker and a command is refused with code 7; nothing runs', async () => {
    const marker = join(scratch, 'mtu-pwned');
    const p = pod('inj1');
    const mtu = `1450\nTRELLIS_POD\ntouch ${marker}\ncat <<'TRELLIS_POD'`;
    const r = await cni({
      command: 'ADD',
      containerID: 'inj1',
      netns: p.path,
      args: podArgs('default', 'inj1'),
      config: { ...pluginConf(h.agent, h.net), mtu },
    });
    expect(r.code, r.stdout).toBe(1);
    expect(r.json).toMatchObject({ code: 7 });
    expect(String(r.json?.msg)).toContain('"mtu"');
    expect(existsSync(marker)).toBe(false);
    expect(await heldBy('inj1')).toEqual([]);
  });

  it('a CNI_IFNAME with a newline and a command is refused with code 4; nothing runs', async () => {
    const marker = join(scratch, 'ifname-pwned');
    const p = pod('inj2');
    const r = await cni({
      command: 'ADD',
      containerID: 'inj2',
      netns: p.path,
      ifname: `e0\nTRELLIS_POD\ntouch ${marker}\n#`,
      args: podArgs('default', 'inj2'),
      config: pluginConf(h.agent, h.net),
    });
    expect(r.code, r.stdout).toBe(1);
    expect(r.json).toMatchObject({ code: 4 });
    expect(String(r.json?.msg)).toContain('CNI_IFNAME');
    expect(existsSync(marker)).toBe(false);
  });
});

describe('spec details', () => {
  it('GC for another network name touches none of this network’s pods', async () => {
    const p = pod('gcx');
    const conf = pluginConf(h.agent, h.net, '1.1.0');
    const r = await cni({
      command: 'ADD',
      containerID: 'gcx',
      netns: p.path,
      args: podArgs('default', 'gcx'),
      config: conf,
    });
    expect(r.code, r.stdout).toBe(0);
    const gc = await cni({
      command: 'GC',
      config: { ...conf, name: 'some-other-network', 'cni.dev/valid-attachments': [] },
    });
    expect(gc.code, gc.stdout).toBe(0);
    expect(inPod(p.ns, 'ip', ['link', 'show', 'eth0']).ok).toBe(true);
    expect((await heldBy('gcx')).length).toBe(2);
    expect((await cni({ command: 'DEL', containerID: 'gcx', netns: p.path, config: conf })).code).toBe(0);
  });

  it('a CNI_NETNS naming an ordinary file is code 4 before any IPAM work', async () => {
    const file = join(scratch, 'not-a-netns');
    writeFileSync(file, '');
    const r = await cni({
      command: 'ADD',
      containerID: 'plainfile',
      netns: file,
      args: podArgs('default', 'plainfile'),
      config: pluginConf(h.agent, h.net),
    });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 4 });
    expect(String(r.json?.msg)).toMatch(/CNI_NETNS.*plainfile.*not a network namespace/);
    expect(await heldBy('plainfile')).toEqual([]);
  });

  it('a netns bind-mounted at a path with a blank and a # is wired like any other', async () => {
    // Runtimes choose the path; `ip -batch` lines split on blanks and stop at '#', so the agent
    // hands such a path to ip as its own descriptor of it. The agent's long-lived `ip` keeps a
    // namespace it opened until it retires (idle 1 s), so the namespace does not stay pinned.
    const p = pod('blankpath');
    const path = join(scratch, 'pod ns #1');
    writeFileSync(path, '');
    execFileSync('mount', ['--bind', p.path, path]);
    try {
      const conf = pluginConf(h.agent, h.net);
      const r = await cni({
        command: 'ADD',
        containerID: 'blankpath',
        netns: path,
        args: podArgs('default', 'blankpath'),
        config: conf,
      });
      expect(r.code, r.stdout).toBe(0);
      const ip4 = ipOf(r.json, 4);
      expect(inPod(p.ns, 'ip', ['-o', 'addr', 'show', 'dev', 'eth0']).out).toContain(`${ip4}/32`);
      expect(trySh('ping', ['-c1', '-W2', ip4]).ok).toBe(true);
      const d = await cni({ command: 'DEL', containerID: 'blankpath', netns: path, config: conf });
      expect(d.code, d.stdout).toBe(0);
      expect(await heldBy('blankpath')).toEqual([]);
      // Nothing of the agent's keeps the namespace open: it can be unmounted (not lazily) soon after.
      let unmounted = false;
      for (let i = 0; i < 50 && !unmounted; i++) {
        unmounted = trySh('umount', [path]).ok;
        if (!unmounted) await new Promise((r) => setTimeout(r, 100));
      }
      expect(unmounted).toBe(true);
    } finally {
      trySh('umount', ['-l', path]);
    }
  });

  it('VERSION with an unsupported cniVersion answers in a version it supports', async () => {
    const r = await cni({ command: 'VERSION', config: { cniVersion: '9.9.9' } });
    expect(r.code).toBe(0);
    const v = r.json as { cniVersion: string; supportedVersions: string[] };
    expect(v.supportedVersions).toContain(v.cniVersion);
  });

  it('an IPAM error keeps its declared code and the message names the container', async () => {
    const name = await h.createPod('tcv-outpool', { 'network.trellis.dev/ip': '10.99.0.1' });
    const p = pod('outpool');
    const r = await cni({
      command: 'ADD',
      containerID: 'outpool-1234',
      netns: p.path,
      args: podArgs('default', name),
      config: pluginConf(h.agent, h.net),
    });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 7 });
    expect(String(r.json?.msg)).toContain('outpool-1234');
    expect(String(r.json?.msg)).toContain('10.99.0.1');
    expect(inPod(p.ns, 'ip', ['link', 'show', 'eth0']).ok).toBe(false);
  });
});

describe('bounds', () => {
  it('a request over the size cap is refused with a CNI error and the agent keeps serving', async () => {
    const huge = JSON.stringify({
      env: { CNI_COMMAND: 'STATUS' },
      config: { cniVersion: '1.1.0', name: 'trellis', type: 'trellis', pad: 'x'.repeat(8 << 20) },
      mode: 'plugin',
    });
    const answer = await askSocket(h.agent.socket, huge);
    expect(answer.split('\n')[0]).toBe('1');
    expect(JSON.parse(answer.slice(2))).toMatchObject({ code: 7 });
    expect(answer).toContain('larger than');
    const status = await cni({ command: 'STATUS', config: pluginConf(h.agent, h.net, '1.1.0') });
    expect(status.code, status.stdout).toBe(0);
  });

  it('an idle connection is closed by the agent', async () => {
    const closed = await new Promise<number>((resolve) => {
      const started = Date.now();
      const c = connect(h.agent.socket);
      c.on('close', () => resolve(Date.now() - started));
      c.on('error', () => undefined);
      setTimeout(() => {
        c.destroy();
        resolve(-1);
      }, 20_000).unref();
    });
    expect(closed).toBeGreaterThan(0);
  }, 30_000);

  it('the plugin gives up on an agent that never answers, with code 11 within its deadline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcv-mute-'));
    const socket = join(dir, 'mute.sock');
    const held: import('node:net').Socket[] = [];
    const mute: Server = createServer((c) => void held.push(c));
    await new Promise<void>((r) => mute.listen(socket, () => r()));
    try {
      const r = await cni({
        command: 'ADD',
        containerID: 'mute1',
        netns: '/proc/self/ns/net',
        config: { ...pluginConf(h.agent, h.net), socket, timeoutSeconds: 2 },
      });
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ code: 11 });
      expect(String(r.json?.msg)).toContain('did not answer');
      expect(r.ms).toBeLessThan(20_000);
    } finally {
      for (const c of held) c.destroy();
      mute.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('agent lifecycle', () => {
  it('an old agent stopping after its successor started leaves the successor serving', async () => {
    const a = await startAgent(kubeconfigPath(), h.net, { TRELLIS_SOCKET: join(scratch, 'shared.sock') });
    let b: Agent | undefined;
    try {
      b = await startAgent(kubeconfigPath(), h.net, { TRELLIS_SOCKET: join(scratch, 'shared.sock') });
      await a.stop();
      const r = await cni({
        command: 'STATUS',
        config: { ...pluginConf(b, h.net, '1.1.0'), socket: b.socket },
      });
      expect(r.code, r.stdout).toBe(0);
    } finally {
      await a.stop();
      await b?.stop();
      cleanupDir(a.dir);
      if (b) cleanupDir(b.dir);
    }
  }, 120_000);

  it('a stopping agent finishes the ADDs in flight: each ends attached or fully rolled back', async () => {
    const sock = join(scratch, 'drain.sock');
    const d = await startAgent(kubeconfigPath(), h.net, { TRELLIS_SOCKET: sock });
    const ids = ['drain0', 'drain1', 'drain2', 'drain3', 'drain4', 'drain5'];
    const pods = ids.map((id) => pod(id));
    const conf = { ...pluginConf(d, h.net), socket: sock };
    const adds = ids.map((id, i) =>
      cni({
        command: 'ADD',
        containerID: id,
        netns: pods[i]!.path,
        args: podArgs('default', id),
        config: conf,
      }),
    );
    // Stop the agent once the first ADD is under way (its veth pair exists, IPAM is writing).
    const veths = ids.map((id) => hostVethName(PREFIX, id, 'eth0'));
    for (let t = 0; t < 2500 && !veths.some((v) => localInterfaces().has(v)); t++)
      await new Promise((r) => setTimeout(r, 2));
    await d.stop();
    const results = await Promise.all(adds);
    try {
      for (const [i, id] of ids.entries()) {
        const r = results[i]!;
        const held = await heldBy(id);
        const linked = inPod(pods[i]!.ns, 'ip', ['link', 'show', 'eth0']).ok;
        if (r.code === 0) {
          expect(linked, `${id} answered ok`).toBe(true);
          expect(held.length, `${id} answered ok`).toBe(2);
        } else {
          expect(r.json, r.stdout).toMatchObject({ code: 11 });
          expect(linked, `${id} failed: ${r.stdout}`).toBe(false);
          expect(held, `${id} failed: ${r.stdout}`).toEqual([]);
        }
      }
      // At least one ADD was in flight when the agent was told to stop, and it completed.
      expect(results.some((r) => r.code === 0)).toBe(true);
    } finally {
      const e = await startAgent(kubeconfigPath(), h.net, { TRELLIS_SOCKET: sock }, d.dir);
      for (const [i, id] of ids.entries())
        await cni({ command: 'DEL', containerID: id, netns: pods[i]!.path, config: conf });
      await e.stop();
      cleanupDir(d.dir);
    }
  }, 120_000);
});
