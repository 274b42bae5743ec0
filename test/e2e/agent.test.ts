// The node agent as a process: its NodeNetworkStatus, vxlan and host-gw programming towards peers
// that come and go in the API, restart safety for running pods, and the conflist's lifetime.
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterNetworkResource, IPBlockResource, NodeNetworkStatusResource } from '../../src/api/group.ts';
import { BLOCK_NODE_LABEL, BLOCK_POOL_LABEL } from '../../src/api/ipam.ts';
import type { NodeNetworkStatus } from '../../src/api/nodestatus.ts';
import { blockName } from '../../src/ipam/block.ts';
import { parseCidr } from '../../src/ipam/cidr.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { useAgentHarness } from '../support/agent-harness.ts';
import { eventually, kubeconfigPath, uniqueName } from '../support/kube.ts';
import { cni, ipOf, pluginConf, podArgs, setNode, sh, startAgent, trySh } from './fixtures/cni-harness.ts';

const h = useAgentHarness({ name: 'tcv-agent', v4: '10.250.48.0/20', v6: 'fd00:250::3:0/112' });
const PEER_IP = '10.249.251.2';
const PEER_MAC = '0e:7e:0a:f9:fb:02';
const PEER_BLOCK = '10.250.63.0/28';

async function nns(name: string): Promise<NodeNetworkStatus | undefined> {
  return h.kube.getOrUndefined<NodeNetworkStatus>(NodeNetworkStatusResource, name);
}

// A peer's underlay: a namespace on a point-to-point link, so host-gw next hops are on-link.
beforeAll(() => h.underlay('tcv-peer', 'tcv-peer0', '10.249.251.1/24', `${PEER_IP}/24`));

describe('NodeNetworkStatus', () => {
  it('reports the node ready with its backend, address, vtep MAC and what the kernel lacks', async () => {
    const s = await eventually(
      async () => (await nns(h.net.node))?.status?.ready && (await nns(h.net.node)),
      'node ready',
      30_000,
    );
    const st = s.status!;
    expect(st).toMatchObject({
      ready: true,
      backend: 'vxlan',
      nodeIP: '127.0.0.1',
      clusterNetwork: h.net.clusterNetwork,
    });
    expect(st.vtepMAC).toBe(sh('cat', ['/sys/class/net/tcv.vxlan/address']).trim());
    expect(st.kernel).toMatchObject({ vxlan: true, bridge: true, macvlan: true, nftables: true });
    // This VM's kernel lacks ipvlan and wireguard: said so, not hidden.
    expect(st.kernel.ipvlan).toBe(false);
    expect(st.conditions?.find((c) => c.type === 'KernelFeaturesMissing')?.message).toContain('ipvlan');
    expect(st.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
  });
});

describe('vxlan peers', () => {
  it('programs static FDB, neighbour and block route for a peer, and removes them when the node goes', async () => {
    const peer = `${h.net.node}-peer`;
    await setNode(h.kube, peer, PEER_IP);
    await h.kube.apply(NodeNetworkStatusResource, {
      apiVersion: 'network.trellis.dev/v1alpha1',
      kind: 'NodeNetworkStatus',
      metadata: { name: peer },
      spec: {},
    });
    await h.kube.apply(
      NodeNetworkStatusResource,
      {
        apiVersion: 'network.trellis.dev/v1alpha1',
        kind: 'NodeNetworkStatus',
        metadata: { name: peer },
        status: {
          clusterNetwork: h.net.clusterNetwork,
          ready: true,
          backend: 'vxlan',
          nodeIP: PEER_IP,
          vtepMAC: PEER_MAC,
          lastHeartbeatTime: new Date().toISOString(),
        },
      },
      {},
      'status',
    );
    await h.kube.create(IPBlockResource, {
      apiVersion: 'network.trellis.dev/v1alpha1',
      kind: 'IPBlock',
      metadata: {
        name: blockName(h.net.v4Pool, parseCidr(PEER_BLOCK)),
        labels: { [BLOCK_POOL_LABEL]: h.net.v4Pool, [BLOCK_NODE_LABEL]: peer },
      },
      spec: { pool: h.net.v4Pool, cidr: PEER_BLOCK, node: peer, allocations: {} },
    });

    await eventually(
      async () => sh('ip', ['route', 'show', PEER_BLOCK]).includes(`via ${PEER_IP} dev tcv.vxlan`),
      'peer block route',
      30_000,
    );
    expect(sh('ip', ['route', 'show', PEER_BLOCK])).toContain('onlink');
    expect(sh('bridge', ['fdb', 'show', 'dev', 'tcv.vxlan'])).toContain(
      `${PEER_MAC} dst ${PEER_IP} self permanent`,
    );
    expect(sh('ip', ['neigh', 'show', 'dev', 'tcv.vxlan'])).toMatch(
      new RegExp(`${PEER_IP.replace(/\./g, '\\.')} lladdr ${PEER_MAC} PERMANENT`),
    );
    // No flooding entry: nothing but our static peer entries with a remote dst.
    expect(sh('bridge', ['fdb', 'show', 'dev', 'tcv.vxlan'])).not.toContain('00:00:00:00:00:00');
    await eventually(async () => (await nns(h.net.node))?.status?.peers === 1, 'peers=1 in status', 30_000);

    // host-gw: the same peer routed via its node address, and the vxlan device goes away.
    await h.kube.mergePatch(ClusterNetworkResource, h.net.clusterNetwork, {
      spec: { backend: { mode: 'host-gw' } },
    });
    await eventually(
      async () => sh('ip', ['route', 'show', PEER_BLOCK]).includes(`via ${PEER_IP} dev tcv-peer0`),
      'host-gw block route',
      30_000,
    );
    await eventually(async () => !existsSync('/sys/class/net/tcv.vxlan'), 'vxlan device removed', 30_000);
    await eventually(
      async () => (await nns(h.net.node))?.status?.backend === 'host-gw',
      'status backend host-gw',
      30_000,
    );

    // The peer node leaves: its route goes.
    await h.kube.delete(Builtin.Node, peer);
    await eventually(
      async () => sh('ip', ['route', 'show', PEER_BLOCK]).trim() === '',
      'peer route removed',
      30_000,
    );
    await h.kube.delete(IPBlockResource, blockName(h.net.v4Pool, parseCidr(PEER_BLOCK)));
    await h.kube.delete(NodeNetworkStatusResource, peer);
    await h.kube.mergePatch(ClusterNetworkResource, h.net.clusterNetwork, {
      spec: { backend: { mode: 'vxlan' } },
    });
    await eventually(async () => existsSync('/sys/class/net/tcv.vxlan'), 'vxlan device back', 30_000);
  });
});

describe('restart safety and the conflist', () => {
  it('a killed agent leaves running pods working; after restart old and new pods work', async () => {
    const p1 = h.netns('tcv-rs1');
    const add1 = await cni({
      command: 'ADD',
      containerID: 'tcv-rs1',
      netns: p1,
      args: podArgs('default', 'rs1'),
      config: pluginConf(h.agent, h.net),
    });
    expect(add1.code, add1.stdout + h.agent.log().slice(-3000)).toBe(0);
    const ip1 = ipOf(add1.json);
    const ifBefore = sh('ip', ['netns', 'exec', 'tcv-rs1', 'cat', '/sys/class/net/eth0/ifindex']).trim();

    await h.agent.stop('SIGKILL');
    expect(trySh('ping', ['-c1', '-W2', ip1]).ok).toBe(true);
    // The conflist stays: a killed agent is coming back, pods must not lose their network config.
    expect(existsSync(join(h.agent.confDir, '10-trellis.conflist'))).toBe(true);

    h.agent = await startAgent(kubeconfigPath(), h.net, {}, h.agent.dir);
    await eventually(
      async () => trySh('ping', ['-c1', '-W1', ip1]).ok,
      'old pod reachable after restart',
      10_000,
    );
    expect(sh('ip', ['netns', 'exec', 'tcv-rs1', 'cat', '/sys/class/net/eth0/ifindex']).trim()).toBe(
      ifBefore,
    );
    const p2 = h.netns('tcv-rs2');
    const add2 = await cni({
      command: 'ADD',
      containerID: 'tcv-rs2',
      netns: p2,
      args: podArgs('default', 'rs2'),
      config: pluginConf(h.agent, h.net),
    });
    expect(add2.code, add2.stdout).toBe(0);
    const ip2 = ipOf(add2.json);
    expect(ip2).not.toBe(ip1);
    expect(trySh('ip', ['netns', 'exec', 'tcv-rs2', 'ping', '-c1', '-W2', ip1]).ok).toBe(true);
    for (const [id, p] of [
      ['tcv-rs1', p1],
      ['tcv-rs2', p2],
    ] as const) {
      expect(
        (await cni({ command: 'DEL', containerID: id, netns: p, config: pluginConf(h.agent, h.net) })).code,
      ).toBe(0);
    }
  });

  it('periodic reconciliation releases the addresses of pods that no longer exist, and only those', async () => {
    await h.agent.stop('SIGTERM');
    h.agent = await startAgent(
      kubeconfigPath(),
      h.net,
      { TRELLIS_RECONCILE_SECONDS: '1', TRELLIS_ORPHAN_GRACE_SECONDS: '0' },
      h.agent.dir,
    );
    const live = await h.createPod('tcv-live');
    const pLive = h.netns('tcv-rs1');
    const pGone = h.netns('tcv-rs2');
    const a = await cni({
      command: 'ADD',
      containerID: 'tcv-orph-live',
      netns: pLive,
      args: podArgs('default', live),
      config: pluginConf(h.agent, h.net),
    });
    const b = await cni({
      command: 'ADD',
      containerID: 'tcv-orph-gone',
      netns: pGone,
      args: podArgs('default', uniqueName('tcv-gone')),
      config: pluginConf(h.agent, h.net),
    });
    expect(a.code, a.stdout).toBe(0);
    expect(b.code, b.stdout).toBe(0);
    const held = async (cid: string): Promise<number> => {
      const blocks =
        await h.kube.listAll<KubeObject<{ allocations?: Record<string, { containerID: string }> }>>(
          IPBlockResource,
        );
      return blocks.items
        .flatMap((x) => Object.values(x.spec?.allocations ?? {}))
        .filter((al) => al.containerID === cid).length;
    };
    await eventually(
      async () => (await held('tcv-orph-gone')) === 0,
      'the orphan (no Pod object) released',
      30_000,
    );
    expect(await held('tcv-orph-live')).toBe(2);
    for (const [id, p] of [
      ['tcv-orph-live', pLive],
      ['tcv-orph-gone', pGone],
    ] as const) {
      expect(
        (await cni({ command: 'DEL', containerID: id, netns: p, config: pluginConf(h.agent, h.net) })).code,
      ).toBe(0);
    }
  });

  it('SIGTERM keeps the conflist through restarts and upgrades, and removes it only when the ClusterNetwork is deleted', async () => {
    const conflist = join(h.agent.confDir, '10-trellis.conflist');
    // a restart or an upgrade: the old agent stops before the new one starts, and no other runs
    await h.agent.stop('SIGTERM');
    expect(existsSync(conflist), 'conflist after a plain SIGTERM (upgrade/restart)').toBe(true);
    h.agent = await startAgent(kubeconfigPath(), h.net, {}, h.agent.dir);
    // uninstall: the ClusterNetwork is being deleted (a finalizer keeps it visible, as the operator's does)
    const hold = 'test.trellis.dev/hold';
    await h.kube.mergePatch(ClusterNetworkResource, h.net.clusterNetwork, {
      metadata: { finalizers: [hold] },
    });
    await h.kube.delete(ClusterNetworkResource, h.net.clusterNetwork);
    try {
      await h.agent.stop('SIGTERM');
      expect(existsSync(conflist), 'conflist after SIGTERM during uninstall').toBe(false);
    } finally {
      await h.kube.mergePatch(ClusterNetworkResource, h.net.clusterNetwork, {
        metadata: { finalizers: null },
      });
    }
  });
});
