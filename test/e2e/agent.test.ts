// The node agent as a process: its NodeNetworkStatus, vxlan and host-gw programming towards peers
// that come and go in the API, restart safety for running pods, and the conflist's lifetime.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterNetworkResource, IPBlockResource, NodeNetworkStatusResource } from '../../src/api/group.ts';
import { BLOCK_NODE_LABEL, BLOCK_POOL_LABEL } from '../../src/api/ipam.ts';
import type { NodeNetworkStatus } from '../../src/api/nodestatus.ts';
import { blockName } from '../../src/ipam/block.ts';
import { parseCidr } from '../../src/ipam/cidr.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { installCrds } from '../../src/kube/crds.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { adminClient, eventually, kubeconfigPath, uniqueName } from '../support/kube.ts';
import {
  buildShim,
  cleanupDir,
  cleanupNodeProgramming,
  cni,
  createTestNetwork,
  delNetns,
  newNetns,
  pluginConf,
  podArgs,
  setNode,
  sh,
  startAgent,
  trySh,
  type Agent,
  type TestNetwork,
} from './fixtures/cni-harness.ts';

let kube: KubeClient;
let net: TestNetwork;
let agent: Agent;
const PEER_IP = '10.249.251.2';
const PEER_MAC = '0e:7e:0a:f9:fb:02';
const PEER_BLOCK = '10.250.63.0/28';

async function nns(name: string): Promise<NodeNetworkStatus | undefined> {
  return kube.getOrUndefined<NodeNetworkStatus>(NodeNetworkStatusResource, name);
}

beforeAll(async () => {
  buildShim();
  kube = await adminClient();
  await installCrds(kube);
  net = await createTestNetwork(kube, uniqueName('tcv-agent'), '10.250.48.0/20', 'fd00:250::3:0/112');
  agent = await startAgent(kubeconfigPath(), net);
  // A peer's underlay: a namespace on a point-to-point link, so host-gw next hops are on-link.
  newNetns('tcv-peer');
  trySh('ip', ['link', 'del', 'tcv-peer0']);
  sh('ip', ['link', 'add', 'tcv-peer0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', 'tcv-peer']);
  sh('ip', ['addr', 'add', '10.249.251.1/24', 'dev', 'tcv-peer0']);
  sh('ip', ['link', 'set', 'tcv-peer0', 'up']);
  sh('ip', ['-n', 'tcv-peer', 'addr', 'add', `${PEER_IP}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', 'tcv-peer', 'link', 'set', 'eth0', 'up']);
});

afterAll(async () => {
  await agent?.stop();
  delNetns('tcv-peer');
  delNetns('tcv-rs1');
  delNetns('tcv-rs2');
  trySh('ip', ['link', 'del', 'tcv-peer0']);
  if (agent) cleanupDir(agent.dir);
  cleanupNodeProgramming();
  await kube?.close();
});

describe('NodeNetworkStatus', () => {
  it('reports the node ready with its backend, address, vtep MAC and what the kernel lacks', async () => {
    const s = await eventually(
      async () => (await nns(net.node))?.status?.ready && (await nns(net.node)),
      'node ready',
      30_000,
    );
    const st = s.status!;
    expect(st).toMatchObject({
      ready: true,
      backend: 'vxlan',
      nodeIP: '127.0.0.1',
      clusterNetwork: net.clusterNetwork,
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
    const peer = `${net.node}-peer`;
    await setNode(kube, peer, PEER_IP);
    await kube.apply(NodeNetworkStatusResource, {
      apiVersion: 'network.trellis.dev/v1alpha1',
      kind: 'NodeNetworkStatus',
      metadata: { name: peer },
      spec: {},
    });
    await kube.apply(
      NodeNetworkStatusResource,
      {
        apiVersion: 'network.trellis.dev/v1alpha1',
        kind: 'NodeNetworkStatus',
        metadata: { name: peer },
        status: {
          clusterNetwork: net.clusterNetwork,
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
    await kube.create(IPBlockResource, {
      apiVersion: 'network.trellis.dev/v1alpha1',
      kind: 'IPBlock',
      metadata: {
        name: blockName(net.v4Pool, parseCidr(PEER_BLOCK)),
        labels: { [BLOCK_POOL_LABEL]: net.v4Pool, [BLOCK_NODE_LABEL]: peer },
      },
      spec: { pool: net.v4Pool, cidr: PEER_BLOCK, node: peer, allocations: {} },
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
    await eventually(async () => (await nns(net.node))?.status?.peers === 1, 'peers=1 in status', 30_000);

    // host-gw: the same peer routed via its node address, and the vxlan device goes away.
    await kube.mergePatch(ClusterNetworkResource, net.clusterNetwork, {
      spec: { backend: { mode: 'host-gw' } },
    });
    await eventually(
      async () => sh('ip', ['route', 'show', PEER_BLOCK]).includes(`via ${PEER_IP} dev tcv-peer0`),
      'host-gw block route',
      30_000,
    );
    await eventually(async () => !existsSync('/sys/class/net/tcv.vxlan'), 'vxlan device removed', 30_000);
    await eventually(
      async () => (await nns(net.node))?.status?.backend === 'host-gw',
      'status backend host-gw',
      30_000,
    );

    // The peer node leaves: its route goes.
    await kube.delete(Builtin.Node, peer);
    await eventually(
      async () => sh('ip', ['route', 'show', PEER_BLOCK]).trim() === '',
      'peer route removed',
      30_000,
    );
    await kube.delete(IPBlockResource, blockName(net.v4Pool, parseCidr(PEER_BLOCK)));
    await kube.delete(NodeNetworkStatusResource, peer);
    await kube.mergePatch(ClusterNetworkResource, net.clusterNetwork, {
      spec: { backend: { mode: 'vxlan' } },
    });
    await eventually(async () => existsSync('/sys/class/net/tcv.vxlan'), 'vxlan device back', 30_000);
  });
});

describe('restart safety and the conflist', () => {
  it('a killed agent leaves running pods working; after restart old and new pods work', async () => {
    const p1 = newNetns('tcv-rs1');
    const add1 = await cni({
      command: 'ADD',
      containerID: 'tcv-rs1',
      netns: p1,
      args: podArgs('default', 'rs1'),
      config: pluginConf(agent, net),
    });
    expect(add1.code, add1.stdout + agent.log().slice(-3000)).toBe(0);
    const ip1 = (add1.json as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
    const ifBefore = sh('ip', ['netns', 'exec', 'tcv-rs1', 'cat', '/sys/class/net/eth0/ifindex']).trim();

    await agent.stop('SIGKILL');
    expect(trySh('ping', ['-c1', '-W2', ip1]).ok).toBe(true);
    // The conflist stays: a killed agent is coming back, pods must not lose their network config.
    expect(existsSync(join(agent.confDir, '10-trellis.conflist'))).toBe(true);

    agent = await startAgent(kubeconfigPath(), net, {}, agent.dir);
    await eventually(
      async () => trySh('ping', ['-c1', '-W1', ip1]).ok,
      'old pod reachable after restart',
      10_000,
    );
    expect(sh('ip', ['netns', 'exec', 'tcv-rs1', 'cat', '/sys/class/net/eth0/ifindex']).trim()).toBe(
      ifBefore,
    );
    const p2 = newNetns('tcv-rs2');
    const add2 = await cni({
      command: 'ADD',
      containerID: 'tcv-rs2',
      netns: p2,
      args: podArgs('default', 'rs2'),
      config: pluginConf(agent, net),
    });
    expect(add2.code, add2.stdout).toBe(0);
    const ip2 = (add2.json as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
    expect(ip2).not.toBe(ip1);
    expect(trySh('ip', ['netns', 'exec', 'tcv-rs2', 'ping', '-c1', '-W2', ip1]).ok).toBe(true);
    for (const [id, p] of [
      ['tcv-rs1', p1],
      ['tcv-rs2', p2],
    ] as const) {
      expect(
        (await cni({ command: 'DEL', containerID: id, netns: p, config: pluginConf(agent, net) })).code,
      ).toBe(0);
    }
  });

  it('periodic reconciliation releases the addresses of pods that no longer exist, and only those', async () => {
    await agent.stop('SIGTERM');
    agent = await startAgent(
      kubeconfigPath(),
      net,
      { TRELLIS_RECONCILE_SECONDS: '1', TRELLIS_ORPHAN_GRACE_SECONDS: '0' },
      agent.dir,
    );
    const live = uniqueName('tcv-live');
    await kube.create(Builtin.Pod, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: live, namespace: 'default' },
      spec: { nodeName: net.node, containers: [{ name: 'c', image: 'none' }] },
    });
    const pLive = newNetns('tcv-rs1');
    const pGone = newNetns('tcv-rs2');
    const a = await cni({
      command: 'ADD',
      containerID: 'tcv-orph-live',
      netns: pLive,
      args: podArgs('default', live),
      config: pluginConf(agent, net),
    });
    const b = await cni({
      command: 'ADD',
      containerID: 'tcv-orph-gone',
      netns: pGone,
      args: podArgs('default', uniqueName('tcv-gone')),
      config: pluginConf(agent, net),
    });
    expect(a.code, a.stdout).toBe(0);
    expect(b.code, b.stdout).toBe(0);
    const held = async (cid: string): Promise<number> => {
      const blocks =
        await kube.listAll<KubeObject<{ allocations?: Record<string, { containerID: string }> }>>(
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
        (await cni({ command: 'DEL', containerID: id, netns: p, config: pluginConf(agent, net) })).code,
      ).toBe(0);
    }
    await kube.delete(Builtin.Pod, live, 'default');
  });

  it('SIGTERM keeps the conflist through restarts and upgrades, and removes it only when the ClusterNetwork is deleted', async () => {
    const conflist = join(agent.confDir, '10-trellis.conflist');
    // a restart or an upgrade: the old agent stops before the new one starts, and no other runs
    await agent.stop('SIGTERM');
    expect(existsSync(conflist), 'conflist after a plain SIGTERM (upgrade/restart)').toBe(true);
    agent = await startAgent(kubeconfigPath(), net, {}, agent.dir);
    // uninstall: the ClusterNetwork is being deleted (a finalizer keeps it visible, as the operator's does)
    const hold = 'test.trellis.dev/hold';
    await kube.mergePatch(ClusterNetworkResource, net.clusterNetwork, { metadata: { finalizers: [hold] } });
    await kube.delete(ClusterNetworkResource, net.clusterNetwork);
    try {
      await agent.stop('SIGTERM');
      expect(existsSync(conflist), 'conflist after SIGTERM during uninstall').toBe(false);
    } finally {
      await kube.mergePatch(ClusterNetworkResource, net.clusterNetwork, { metadata: { finalizers: null } });
    }
  });
});
