// backend.mode bgp end to end: `trellis lab up --backend bgp --racks 2 --nodes 4` for real: two racks,
// each its own segment and subnet behind a top-of-rack router netns running BIRD (eBGP), agents
// driving BIRD on every node. Pods across racks reach each other through BGP-learned routes with no
// overlay and no NAT; an agent and its BIRD killed do not lose a ping; a deleted node's blocks leave
// every router; a peer nobody answers shows as not established with a reason while the rest works.
import { startPingLoop } from '../support/ping-loop.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import { ClusterNetworkResource, NodeNetworkStatusResource } from '../../src/api/group.ts';
import type { NodeNetworkStatus } from '../../src/api/nodestatus.ts';
import { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { PEER_ROUTE_PROTO } from '../../src/dataplane/peers.ts';
import { BGP_KERNEL_TABLE } from '../../src/routing/index.ts';
import { AGENT_NAMESPACE, agentLog, agentPid, killAgent, startAgent } from '../../lab/agents.ts';
import { configureTor, labBgpSpec } from '../../lab/racks.ts';
import { down } from '../../lab/down.ts';
import { createPod, type PodView } from '../../lab/podcmd.ts';
import { run } from '../../lab/sh.ts';
import { REPO, type LabNode, type LabState } from '../../lab/state.ts';
import { up } from '../../lab/up.ts';
import { eventually } from '../support/kube.ts';
import { probeFrom } from '../support/probe.ts';

const PREFIX = 'tbg';
const STATE_DIR = join(REPO, '.cache', 'lab-bgp-e2e');

function routes(netns: string, extra: string[] = []): string {
  return run(['ip', '-n', netns, 'route', 'show', ...extra]);
}

function birdPids(netns: string): number[] {
  return run(['ip', 'netns', 'pids', netns])
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'bird';
      } catch {
        return false;
      }
    });
}

describe('lab with the bgp backend on 2 racks x 2 nodes', () => {
  let state: LabState;
  let kube: KubeClient;
  const pods: PodView[] = [];
  const blocksOf = new Map<string, string[]>();

  beforeAll(async () => {
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
    state = await up({
      nodes: 4,
      racks: 2,
      backend: 'bgp',
      stateDir: STATE_DIR,
      prefix: PREFIX,
      subnet: '198.18.9',
    });
    kube = await KubeClient.fromKubeconfig(state.kubeconfig);
    pods.push(
      ...(await Promise.all(
        state.nodes.map((n) =>
          createPod(kube, state, { name: `p-${n.name}`, namespace: 'default', node: n.name }),
        ),
      )),
    );
    for (const n of state.nodes) {
      const nns = await eventually(async () => {
        const s = await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, n.name);
        return s.status?.blocks?.length ? s : undefined;
      }, `${n.name} to report the block of its pod`);
      blocksOf.set(n.name, nns.status?.blocks ?? []);
    }
  });

  afterAll(async () => {
    await kube?.close();
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
  });

  it('puts each rack on its own subnet behind its router, and every node reports an established session', async () => {
    expect(state.racks?.map((r) => `${r.name} ${r.ip} AS${r.asNumber}`)).toEqual([
      'rack1 198.19.1.1 AS65001',
      'rack2 198.19.2.1 AS65002',
    ]);
    expect(state.nodes.map((n) => `${n.name}@${n.rack}:${n.rackIP}`)).toEqual([
      'node1@rack1:198.19.1.11',
      'node2@rack1:198.19.1.12',
      'node3@rack2:198.19.2.11',
      'node4@rack2:198.19.2.12',
    ]);
    for (const n of state.nodes) {
      const nns = await eventually(async () => {
        const s = await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, n.name);
        return s.status?.bgp?.established === '1/1' ? s : undefined;
      }, `${n.name} to report its BGP session established`);
      expect(nns.status?.bgp?.sessions[0]).toMatchObject({
        peerAddress: `198.19.${n.rack!.slice(4)}.1`,
        established: true,
      });
      expect(nns.status?.conditions?.find((c) => c.type === 'BGPSessionsEstablished')?.status).toBe('True');
    }
  });

  it('shows every pod block on each router, learned by BGP, and installs the other nodes blocks in main with our route protocol number', async () => {
    const all = [...blocksOf.values()].flat();
    expect(all.length).toBeGreaterThanOrEqual(4);
    for (const rack of state.racks!) {
      await eventually(
        async () => all.every((b) => routes(rack.netns).includes(b)) || undefined,
        `${rack.name} routes`,
      );
      expect(routes(rack.netns, ['proto', 'bird'])).toContain(all[0]);
    }
    const node1 = state.nodes[0]!;
    const others = state.nodes.slice(1).flatMap((n) => blocksOf.get(n.name)!);
    // every other node's block, via the rack router, as proto 221 (ours), in main
    const learned = await eventually(async () => {
      const r = routes(node1.netns, ['proto', String(PEER_ROUTE_PROTO)]);
      return others.every((b) => r.includes(`${b} via 198.19.1.1 dev rk0`)) ? r : undefined;
    }, 'node1 to install the other nodes blocks with proto 221');
    for (const b of blocksOf.get(node1.name)!) expect(learned).toContain(`blackhole ${b}`);
    // and none of BIRD's own (proto bird) in main: BIRD writes to its table, the agent copies
    expect(routes(node1.netns, ['proto', 'bird'])).toBe('');
    // no overlay device on any node
    expect(run(['ip', '-n', node1.netns, '-o', 'link', 'show', 'type', 'vxlan'])).toBe('');
  });

  it('reaches every pod from every pod in both directions, and receivers see the senders pod IPs', () => {
    for (const src of pods) {
      const targets = pods.filter((p) => p !== src).map((p) => ({ id: p.name, ip: p.ip }));
      for (const r of probeFrom(src.netns, targets)) {
        expect(r.tcp?.ok, `${src.name} -> ${r.id}: ${r.tcp?.error}`).toBe(true);
        expect(r.tcp?.answer?.sawSource, `${src.name} -> ${r.id}`).toBe(src.ip);
        expect(r.icmp?.ok, `${src.name} -> ${r.id} ping: ${r.icmp?.error}`).toBe(true);
      }
    }
  });

  it('masquerades egress to the outside host behind the node address', () => {
    const src = pods[0]!;
    const [r] = probeFrom(src.netns, [{ id: 'outside', ip: state.outside.ip }]);
    expect(r?.tcp?.ok, r?.tcp?.error).toBe(true);
    expect(r?.tcp?.answer?.sawSource).toBe(state.nodes[0]!.ip);
  });

  it('loses no ping between racks while an agent and its BIRD are SIGKILLed and restarted', async () => {
    const node = state.nodes[0]!;
    const a = pods[0]!;
    const b = pods[2]!; // rack2
    const ping = startPingLoop(a.netns, b.ip, 0.1);
    const replies = ping.replies;
    let gaps: { last: number; missing: number[] };
    try {
      await eventually(async () => replies() >= 5 || undefined, 'the ping loop to run');
      expect(killAgent(state, node)).toBe(true);
      const birds = birdPids(node.netns);
      expect(birds.length, 'BIRD runs on the node, beside the agent').toBe(1);
      for (const p of birds) process.kill(p, 'SIGKILL');
      const atKill = replies();
      await eventually(
        async () => replies() >= atKill + 30 || undefined,
        'ping replies while agent and BIRD are down',
      );
      await startAgent(kube, state, node);
      await eventually(
        async () => (birdPids(node.netns).length === 1 ? true : undefined),
        'the agent to start BIRD again',
      );
      await eventually(async () => {
        const s = await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, node.name);
        return s.status?.bgp?.established === '1/1' || undefined;
      }, 'the session to re-establish');
      // and an agent restart alone (SIGKILL) leaves BIRD running: adopted, not restarted
      const bird = birdPids(node.netns)[0];
      expect(killAgent(state, node)).toBe(true);
      await startAgent(kube, state, node);
      await sleep(3000); // the new agent has reconciled: it adopted BIRD, it did not start another
      expect(birdPids(node.netns)).toEqual([bird]);
      const atRestart = replies();
      await eventually(
        async () => replies() >= atRestart + 20 || undefined,
        'ping replies after the restarts',
      );
    } finally {
      gaps = await ping.stop();
    }
    expect(gaps.last).toBeGreaterThan(60);
    expect(gaps.missing, 'echo requests without a reply across the kills').toEqual([]);
  });

  it('shows a peer nobody answers as not established with a reason, and the rest keeps working', async () => {
    const cn = await kube.get<ClusterNetwork>(ClusterNetworkResource, 'default');
    const peers = [...(cn.spec!.backend.bgp!.peers ?? [])];
    peers.push({
      address: '198.19.1.99',
      asNumber: 65099,
      nodeSelector: { matchLabels: { 'lab.trellis.dev/rack': 'rack1' } },
    });
    await kube.mergePatch(ClusterNetworkResource, 'default', { spec: { backend: { bgp: { peers } } } });
    const s = await eventually(async () => {
      const nns = await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, 'node2');
      const x = nns.status?.bgp?.sessions.find((y) => y.peerAddress === '198.19.1.99');
      return x ? nns : undefined;
    }, 'node2 to report the session to the unanswered peer');
    const bad = s.status!.bgp!.sessions.find((y) => y.peerAddress === '198.19.1.99')!;
    expect(bad.established).toBe(false);
    expect(bad.reason).toBeTruthy();
    expect(s.status!.bgp!.established).toBe('1/2');
    expect(s.status?.conditions?.find((c) => c.type === 'BGPSessionsEstablished')?.message).toContain(
      '198.19.1.99',
    );
    await eventually(async () => {
      const c = (await kube.get<ClusterNetwork>(ClusterNetworkResource, 'default')).status?.conditions?.find(
        (x) => x.type === 'Degraded',
      );
      return c?.status === 'True' &&
        c.message.includes('node node2 has BGP sessions not established: 198.19.1.99')
        ? c
        : undefined;
    }, 'the ClusterNetwork to be Degraded naming node2 and the peer');
    // the rest still works across racks
    const [r] = probeFrom(pods[1]!.netns, [{ id: 'p3', ip: pods[3]!.ip }]);
    expect(r?.tcp?.ok, r?.tcp?.error).toBe(true);
  });

  it('authenticates a router with the password from a Secret (TCP MD5), never shows it, and shows a wrong one as not established', async () => {
    const password = 'rack1-Tcp-MD5-key';
    const rack1 = state.racks![0]!;
    const rack1Nodes = state.nodes.filter((n) => n.rack === rack1.name);
    const toTor = async (node: LabNode, established: boolean) =>
      eventually(
        async () => {
          const s = await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, node.name);
          const x = s.status?.bgp?.sessions.find((y) => y.peerAddress === rack1.ip);
          return x && x.established === established ? s : undefined;
        },
        `${node.name}'s session to ${rack1.ip} to be ${established ? '' : 'not '}established`,
      );
    await kube.create(Builtin.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'tor1-bgp', namespace: AGENT_NAMESPACE },
      stringData: { password, wrong: 'not-the-password' },
    } as KubeObject);
    // rack1's router now requires the password of its nodes: their sessions drop
    configureTor(state, rack1, new Map(rack1Nodes.map((n) => [n.rackIP!, password])));
    for (const n of rack1Nodes) await toTor(n, false);
    // the ClusterNetwork names the Secret: the agents may read it (a Role by name) and BIRD signs with it
    const base = labBgpSpec(state).peers!;
    const withKey = (key: string) => ({
      spec: {
        backend: {
          bgp: {
            peers: [{ ...base[0]!, password: { secretKeyRef: { name: 'tor1-bgp', key } } }, ...base.slice(1)],
          },
        },
      },
    });
    await kube.mergePatch(ClusterNetworkResource, 'default', withKey('password'));
    for (const n of rack1Nodes) {
      const nns = await toTor(n, true);
      expect(JSON.stringify(nns), `password in ${n.name}'s NodeNetworkStatus`).not.toContain(password);
      expect(readFileSync(agentLog(state, n), 'utf8'), `password in ${n.name}'s agent log`).not.toContain(
        password,
      );
    }
    const cn = await kube.get<ClusterNetwork>(ClusterNetworkResource, 'default');
    expect(JSON.stringify(cn.status)).not.toContain(password);
    // and a wrong password: not established, named in Degraded
    await kube.mergePatch(ClusterNetworkResource, 'default', withKey('wrong'));
    const down = await toTor(rack1Nodes[0]!, false);
    const x = down.status!.bgp!.sessions.find((y) => y.peerAddress === rack1.ip)!;
    expect(x.reason, 'a reason for the session that does not come up').toBeTruthy();
    await eventually(async () => {
      const c = (await kube.get<ClusterNetwork>(ClusterNetworkResource, 'default')).status?.conditions?.find(
        (y) => y.type === 'Degraded',
      );
      return c?.status === 'True' &&
        c.message.includes(`node ${rack1Nodes[0]!.name} has no established BGP session: ${rack1.ip}`)
        ? c
        : undefined;
    }, 'Degraded to name the node and the router');
    // the right key again: the rack comes back for the tests after this one
    await kube.mergePatch(ClusterNetworkResource, 'default', withKey('password'));
    for (const n of rack1Nodes) await toTor(n, true);
  });

  it("withdraws a deleted node's blocks from every router", async () => {
    const gone: LabNode = state.nodes[3]!;
    const blocks = blocksOf.get(gone.name)!;
    await kube.delete(Builtin.Node, gone.name);
    for (const where of [...state.racks!.map((r) => r.netns), state.nodes[0]!.netns]) {
      await eventually(
        async () => (blocks.every((b) => !routes(where).includes(b)) ? true : undefined),
        `${gone.name}'s blocks to leave ${where}`,
        30_000,
      );
    }
  });
});

describe('lab with the bgp backend as an iBGP full mesh on one segment (no router)', () => {
  let state: LabState;
  let kube: KubeClient;
  const pods: PodView[] = [];
  const nobody = '198.18.9.199';

  beforeAll(async () => {
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
    state = await up({ nodes: 3, backend: 'bgp', stateDir: STATE_DIR, prefix: PREFIX, subnet: '198.18.9' });
    kube = await KubeClient.fromKubeconfig(state.kubeconfig);
    pods.push(
      ...(await Promise.all(
        state.nodes.map((n) =>
          createPod(kube, state, { name: `m-${n.name}`, namespace: 'default', node: n.name }),
        ),
      )),
    );
  });

  afterAll(async () => {
    await kube?.close();
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
  });

  it('peers every node with every other and reaches every pod through the learned routes', async () => {
    expect(state.racks ?? []).toEqual([]);
    const blocks = new Map<string, string[]>();
    for (const n of state.nodes) {
      const nns = await eventually(async () => {
        const s = await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, n.name);
        return s.status?.bgp?.established === '2/2' && s.status.blocks?.length ? s : undefined;
      }, `${n.name} to report both mesh sessions established`);
      expect(nns.status!.bgp!.sessions.map((x) => `${x.kind} ${x.peerAddress} AS${x.peerAS}`).sort()).toEqual(
        state.nodes
          .filter((o) => o !== n)
          .map((o) => `mesh ${o.ip} AS64512`)
          .sort(),
      );
      blocks.set(n.name, nns.status!.blocks!);
    }
    // node1 routes each other node's block straight to that node, learned over iBGP, as proto 221
    const node1 = state.nodes[0]!;
    await eventually(async () => {
      const r = routes(node1.netns, ['proto', String(PEER_ROUTE_PROTO)]);
      return state.nodes
        .slice(1)
        .every((o) => blocks.get(o.name)!.every((b) => r.includes(`${b} via ${o.ip} dev eth0`)))
        ? true
        : undefined;
    }, 'node1 to install the other nodes blocks via their addresses');
    expect(routes(node1.netns, ['proto', 'bird'])).toBe('');
    for (const src of pods) {
      const targets = pods.filter((p) => p !== src).map((p) => ({ id: p.name, ip: p.ip }));
      for (const r of probeFrom(src.netns, targets)) {
        expect(r.tcp?.ok, `${src.name} -> ${r.id}: ${r.tcp?.error}`).toBe(true);
        expect(r.tcp?.answer?.sawSource, `${src.name} -> ${r.id}`).toBe(src.ip);
      }
    }
  });

  it('shows a peer with a wrong AS and a peer nobody answers as not established, names them in Degraded, and the rest keeps working', async () => {
    const [node1, node2, node3] = state.nodes as [LabNode, LabNode, LabNode];
    // node1 is told node3 is in AS 65099 (it is in 64512); node2 gets a peer at an address nobody has
    await kube.mergePatch(ClusterNetworkResource, 'default', {
      spec: {
        backend: {
          bgp: {
            peers: [
              {
                address: node3.ip,
                asNumber: 65099,
                nodeSelector: { matchLabels: { 'kubernetes.io/hostname': node1.name } },
              },
              {
                address: nobody,
                asNumber: 65099,
                nodeSelector: { matchLabels: { 'kubernetes.io/hostname': node2.name } },
              },
            ],
          },
        },
      },
    });
    const session = async (node: LabNode, peer: string, want: (reason: string) => boolean) =>
      eventually(async () => {
        const s = await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, node.name);
        const x = s.status?.bgp?.sessions.find((y) => y.peerAddress === peer);
        return x && !x.established && want(x.reason ?? '') ? x : undefined;
      }, `${node.name} to report the session to ${peer} down with a reason`);
    const wrongAs = await session(node1, node3.ip, (r) => /peer AS/i.test(r));
    expect(wrongAs).toMatchObject({ kind: 'peer', peerAS: 65099, established: false });
    expect(wrongAs.reason).toMatch(/Bad peer AS/);
    const unanswered = await session(node2, nobody, (r) => r.length > 0);
    expect(unanswered).toMatchObject({ kind: 'peer', peerAS: 65099, established: false });
    const degraded = await eventually(async () => {
      const cn = await kube.get<ClusterNetwork>(ClusterNetworkResource, 'default');
      const c = cn.status?.conditions?.find((x) => x.type === 'Degraded');
      return c?.status === 'True' && c.message.includes(node1.name) && c.message.includes(nobody)
        ? c
        : undefined;
    }, 'the ClusterNetwork to be Degraded naming both');
    expect(degraded.reason).toBe('BGPSessionsDown');
    expect(degraded.message).toContain(`node ${node1.name} has BGP sessions not established: ${node3.ip}`);
    expect(degraded.message).toContain(`node ${node2.name} has BGP sessions not established: ${nobody}`);
    // node2's sessions to node1 and node3 are untouched: its pod still reaches both
    for (const r of probeFrom(
      pods[1]!.netns,
      [pods[0]!, pods[2]!].map((p) => ({ id: p.name, ip: p.ip })),
    ))
      expect(r.tcp?.ok, `${pods[1]!.name} -> ${r.id}: ${r.tcp?.error}`).toBe(true);
    await kube.mergePatch(ClusterNetworkResource, 'default', { spec: { backend: { bgp: { peers: null } } } });
    await eventually(async () => {
      const cn = await kube.get<ClusterNetwork>(ClusterNetworkResource, 'default');
      return cn.status?.conditions?.find((x) => x.type === 'Degraded')?.status === 'False' || undefined;
    }, 'Degraded to clear once the bad peers are gone');
  });

  it('stops BIRD and empties its table when the ClusterNetwork leaves mode bgp, and starts it again on return', async () => {
    const bgp = labBgpSpec(state);
    await kube.mergePatch(ClusterNetworkResource, 'default', {
      spec: { backend: { mode: 'vxlan', bgp: null } },
    });
    await eventually(
      async () => state.nodes.every((n) => birdPids(n.netns).length === 0) || undefined,
      'every BIRD to stop once the backend is vxlan',
      30_000,
    );
    const node1 = state.nodes[0]!;
    await eventually(async () => {
      const r = routes(node1.netns, ['proto', String(PEER_ROUTE_PROTO)]);
      // vxlan's own block routes replace the BGP-learned ones (same protocol number, onlink on the vxlan device)
      return r.includes('onlink') && !r.includes('dev eth0') ? true : undefined;
    }, "node1's block routes to go over vxlan");
    expect(run(['ip', '-n', node1.netns, 'route', 'show', 'table', String(BGP_KERNEL_TABLE)])).toBe('');
    for (const r of probeFrom(
      pods[0]!.netns,
      pods.slice(1).map((p) => ({ id: p.name, ip: p.ip })),
    ))
      expect(r.tcp?.ok, `${pods[0]!.name} -> ${r.id} over vxlan: ${r.tcp?.error}`).toBe(true);
    await kube.mergePatch(ClusterNetworkResource, 'default', { spec: { backend: { mode: 'bgp', bgp } } });
    for (const n of state.nodes)
      await eventually(async () => {
        const s = await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, n.name);
        return s.status?.bgp?.established === '2/2' && birdPids(n.netns).length === 1 ? true : undefined;
      }, `${n.name} to run BIRD with both sessions again`);
    expect(run(['ip', '-n', node1.netns, '-o', 'link', 'show', 'type', 'vxlan'])).toBe('');
  });

  it('stops every BIRD and withdraws the learned routes when the ClusterNetwork is deleted (uninstall)', async () => {
    expect(state.nodes.every((n) => birdPids(n.netns).length === 1)).toBe(true);
    await kube.delete(ClusterNetworkResource, 'default');
    await eventually(
      async () => state.nodes.every((n) => agentPid(state, n) === undefined) || undefined,
      'every agent to stop once the operator deleted the DaemonSet',
      60_000,
    );
    for (const n of state.nodes) {
      expect(birdPids(n.netns), `BIRD left on ${n.name}`).toEqual([]);
      const learned = routes(n.netns, ['proto', String(PEER_ROUTE_PROTO)])
        .split('\n')
        .filter((l) => l && !l.startsWith('blackhole'));
      expect(learned, `learned routes left on ${n.name}`).toEqual([]);
      expect(run(['ip', '-n', n.netns, 'route', 'show', 'table', String(BGP_KERNEL_TABLE)])).toBe('');
    }
  });
});

describe('lab with the host-gw backend on the same racks', () => {
  let state: LabState;
  let kube: KubeClient;

  beforeAll(async () => {
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
    state = await up({
      nodes: 2,
      racks: 2,
      backend: 'host-gw',
      stateDir: STATE_DIR,
      prefix: PREFIX,
      subnet: '198.18.9',
    });
    kube = await KubeClient.fromKubeconfig(state.kubeconfig);
  });

  afterAll(async () => {
    await kube?.close();
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
  });

  it('cannot reach pods in the other rack, and each agent names the unreachable node', async () => {
    const [a, b] = await Promise.all(
      state.nodes.map((n) =>
        createPod(kube, state, { name: `h-${n.name}`, namespace: 'default', node: n.name }),
      ),
    );
    const [r] = probeFrom(a!.netns, [{ id: 'b', ip: b!.ip }]);
    expect(r?.tcp?.ok).toBe(false);
    for (const [self, other] of [
      [state.nodes[0]!, state.nodes[1]!],
      [state.nodes[1]!, state.nodes[0]!],
    ]) {
      const c = await eventually(async () => {
        const s = await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, self.name);
        return s.status?.conditions?.find((x) => x.type === 'PeersReachable' && x.status === 'False');
      }, `${self.name} to report ${other.name} unreachable`);
      expect(c.message).toContain(`${other.name} (${other.rackIP})`);
      expect(c.message).toMatch(/use backend bgp/);
    }
  });
});
