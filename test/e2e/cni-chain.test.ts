// The conflist as a runtime runs it: our plugin (installed by the agent into its CNI bin dir)
// then Debian's reference portmap with our result as prevResult. Pods on one node reach each
// other with their own addresses; hostPort works; CHECK and DEL work on the whole chain; traffic
// to a host outside the cluster CIDRs is masqueraded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { useAgentHarness } from '../support/agent-harness.ts';
import {
  delNetns,
  inPod,
  ipOf,
  podArgs,
  runChain,
  runPlugin,
  sh,
  startEchoServer,
  tcpAsk,
  waitReady,
} from './fixtures/cni-harness.ts';

const h = useAgentHarness({
  name: 'tcv-chain',
  v4: '10.250.32.0/20',
  v6: 'fd00:250::2:0/112',
  beforeAgent: () => clearStalePortmaps(),
});
let conflist: string;
let bins: string[];
const servers: ChildProcess[] = [];
const pods: Record<string, { path: string; result: Record<string, unknown>; ip4: string; ip6: string }> = {};

const HOST_PORT = 18093;

/** The runtimeConfig a runtime caches per pod and hands to every verb (portmap's DEL needs it too). */
function mappingsOf(name: string): Record<string, unknown> {
  return {
    portMappings: name === 'tcv-ca' ? [{ hostPort: HOST_PORT, containerPort: 8080, protocol: 'tcp' }] : [],
  };
}

/** Removes portmap rules a crashed earlier run may have left for our container IDs. */
async function clearStalePortmaps(): Promise<void> {
  const conf = {
    cniVersion: '1.0.0',
    name: 'trellis',
    type: 'portmap',
    snat: true,
    runtimeConfig: mappingsOf('tcv-ca'),
  };
  await runPlugin(
    '/usr/lib/cni/portmap',
    {
      CNI_COMMAND: 'DEL',
      CNI_CONTAINERID: 'tcv-ca',
      CNI_IFNAME: 'eth0',
      CNI_NETNS: '/run/netns/tcv-ca',
      CNI_PATH: '/usr/lib/cni',
    },
    JSON.stringify(conf),
  );
}
const OUTSIDE = '10.249.250.2';

beforeAll(async () => {
  conflist = join(h.agent.confDir, '10-trellis.conflist');
  bins = [h.agent.binDir, '/usr/lib/cni'];
  for (const name of ['tcv-ca', 'tcv-cb']) {
    const path = h.netns(name);
    const { result } = await runChain(
      'ADD',
      conflist,
      bins,
      { containerID: name, netns: path, args: podArgs('default', name) },
      mappingsOf(name),
    );
    pods[name] = { path, result, ip4: ipOf(result, 4), ip6: ipOf(result, 6) };
    const srv = startEchoServer(name, 8080);
    servers.push(srv);
    await waitReady(srv);
  }
  // An outside host: a namespace behind a point-to-point link, outside every cluster CIDR.
  h.underlay('tcv-out', 'tcv-out0', '10.249.250.1/30', `${OUTSIDE}/30`);
  const srv = startEchoServer('tcv-out', 8080);
  servers.push(srv);
  await waitReady(srv);
});

// Runs before the harness stops the agent: the chain's DEL needs it.
afterAll(async () => {
  for (const s of servers) s.kill();
  for (const [name, p] of Object.entries(pods)) {
    await runChain(
      'DEL',
      conflist,
      bins,
      { containerID: name, netns: p.path },
      mappingsOf(name),
      p.result,
    ).catch(() => undefined);
  }
});

describe('pods on one node', () => {
  it('reach each other over ICMP and TCP, and the receiver sees the sender pod IP (v4 and v6)', () => {
    const a = pods['tcv-ca']!;
    const b = pods['tcv-cb']!;
    expect(inPod('tcv-cb', 'ping', ['-c1', '-W2', a.ip4]).ok).toBe(true);
    expect(inPod('tcv-ca', 'ping', ['-6', '-c1', '-W2', b.ip6]).ok).toBe(true);
    expect(tcpAsk('tcv-cb', a.ip4, 8080)).toBe(b.ip4);
    expect(tcpAsk('tcv-ca', b.ip6, 8080)).toBe(a.ip6);
  });

  it('the node reaches a pod with its own address kept (no NAT node to pod)', () => {
    const a = pods['tcv-ca']!;
    const seen = tcpAsk(undefined, a.ip4, 8080);
    expect(seen).not.toMatch(/^10\.250\./);
    expect(seen.length).toBeGreaterThan(0);
  });

  it('masquerades traffic to a host outside the cluster CIDRs', () => {
    const b = pods['tcv-cb']!;
    expect(tcpAsk('tcv-cb', OUTSIDE, 8080)).toBe('10.249.250.1');
    expect(b.ip4).toMatch(/^10\.250\./);
  });
});

describe('chained portmap', () => {
  it('hostPort reaches the pod probe port from the node', () => {
    const a = pods['tcv-ca']!;
    const hostAddr = sh('ip', ['-4', '-o', 'addr', 'show', 'dev', 'tcv-out0'])
      .split(/\s+/)[3]!
      .split('/')[0]!;
    // Via a node address (DNAT in portmap's OUTPUT chain); the pod answers through our veth.
    const seen = tcpAsk(undefined, hostAddr, HOST_PORT);
    expect(seen.length).toBeGreaterThan(0);
    expect(a.ip4).toMatch(/^10\.250\./);
  });

  it('portmap got our result as prevResult: the chain result keeps our interfaces and IPs', () => {
    const a = pods['tcv-ca']!;
    const ifaces = a.result.interfaces as { name: string; sandbox?: string }[];
    expect(ifaces.some((i) => i.name === 'eth0' && i.sandbox === a.path)).toBe(true);
    expect(a.result.cniVersion).toBe('1.0.0');
  });

  it('CHECK passes on the whole chain, and DEL of the chain removes the pod network', async () => {
    // Debian's portmap 1.1.1 cannot CHECK its own port mappings (containernetworking/plugins#819:
    // it looks for IPv6 NAT rules that ADD never made), so this pod has none: portmap still sees
    // our prevResult on CHECK and DEL, and our CHECK verifies the pod network.
    const name = 'tcv-cc';
    const path = h.netns(name);
    const { result } = await runChain('ADD', conflist, bins, {
      containerID: name,
      netns: path,
      args: podArgs('default', name),
    });
    const check = await runChain('CHECK', conflist, bins, { containerID: name, netns: path }, {}, result);
    expect(check.runs.map((r) => r.code)).toEqual([0, 0]);
    // Our CHECK in the chain does look: break the pod's default route and it fails.
    sh('ip', ['netns', 'exec', name, 'ip', 'route', 'del', 'default']);
    await expect(
      runChain('CHECK', conflist, bins, { containerID: name, netns: path }, {}, result),
    ).rejects.toThrow(/CHECK trellis failed.*route 0\.0\.0\.0\/0/s);
    await runChain('DEL', conflist, bins, { containerID: name, netns: path }, {}, result);
    expect(inPod(name, 'ip', ['link', 'show', 'eth0']).ok).toBe(false);
    expect(sh('ip', ['route', 'show', `${ipOf(result, 4)}/32`]).trim()).toBe('');
    delNetns(name);
  });
});
