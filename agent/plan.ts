// Pure functions from API objects to what this node must program: its own address, its blocks,
// and its peers (other nodes with an address and blocks). Kept free of I/O so it is unit-tested.
import type { BackendMode, ClusterNetwork } from '../src/api/clusternetwork.ts';
import type { IPBlock } from '../src/api/ipam.ts';
import type { KernelFeatures, NodeNetworkStatus } from '../src/api/nodestatus.ts';
import type { KubeObject } from '../src/kube/object.ts';
import type { PeerNode, PeerPlan } from '../src/dataplane/peers.ts';
import { blockFits, poolsOf } from '../src/ipam/pools.ts';
import { contains, parseCidr } from '../src/ipam/cidr.ts';

export type NodeObject = KubeObject<unknown, { addresses?: { type: string; address: string }[] }>;

export interface NodeAddresses {
  v4?: string;
  v6?: string;
}

/** The node's InternalIP addresses (first of each family). */
export function nodeAddresses(node: NodeObject): NodeAddresses {
  const out: NodeAddresses = {};
  for (const a of node.status?.addresses ?? []) {
    if (a.type !== 'InternalIP') continue;
    if (a.address.includes(':')) out.v6 ??= a.address;
    else out.v4 ??= a.address;
  }
  return out;
}

export function planPeers(
  self: string,
  cn: ClusterNetwork,
  nodes: NodeObject[],
  blocks: IPBlock[],
  statuses: NodeNetworkStatus[],
): PeerPlan {
  // pod pools only, and only blocks that are exactly one block of their pool (see blockFits)
  const pools = poolsOf({ pools: cn.spec?.pools ?? [] });
  const byNode = new Map<string, string[]>();
  for (const b of blocks) {
    const node = b.spec?.node;
    if (!node || !blockFits(pools, b.spec!)) continue;
    const list = byNode.get(node) ?? [];
    list.push(b.spec!.cidr);
    byNode.set(node, list);
  }
  const macs = new Map(statuses.map((s) => [s.metadata.name, s.status?.vtepMAC]));
  const peers: PeerNode[] = [];
  for (const n of nodes) {
    const name = n.metadata.name;
    if (name === self) continue;
    const addrs = nodeAddresses(n);
    const nodeIP = addrs.v4 ?? addrs.v6;
    const nodeBlocks = byNode.get(name);
    if (!nodeIP || !nodeBlocks?.length) continue;
    const peer: PeerNode = { name, nodeIP, blocks: [...nodeBlocks].sort() };
    if (addrs.v6) peer.nodeIPv6 = addrs.v6;
    const mac = macs.get(name);
    if (mac) peer.vtepMAC = mac;
    peers.push(peer);
  }
  peers.sort((a, b) => a.name.localeCompare(b.name));
  return { ownBlocks: [...(byNode.get(self) ?? [])].sort(), peers };
}

/** Every node address known to the API (masquerade exemptions). */
export function allNodeAddresses(nodes: NodeObject[]): string[] {
  return nodes.flatMap((n) =>
    (n.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address),
  );
}

/** What of a Node the data plane uses: its addresses. */
export function relevantNode(n: KubeObject): string {
  // labels too: BGP peers select nodes by label
  return JSON.stringify([(n as NodeObject).status?.addresses ?? [], n.metadata.labels ?? {}]);
}

/** What of an IPBlock the data plane uses: which node routes which CIDR (not its allocations). */
export function relevantBlock(b: KubeObject): string {
  const spec = (b as IPBlock).spec;
  return `${spec?.pool}|${spec?.cidr}|${spec?.node ?? ''}`;
}

/** What of a peer's NodeNetworkStatus the data plane uses (not its heartbeat). */
export function relevantPeerStatus(s: KubeObject): string {
  const st = (s as NodeNetworkStatus).status;
  return `${st?.nodeIP ?? ''}|${st?.vtepMAC ?? ''}`;
}

/** Why this kernel cannot run the ClusterNetwork as specified, naming the module; undefined when it can. */
export function kernelBlocker(
  backend: BackendMode,
  masquerade: boolean,
  kernel: KernelFeatures,
): { reason: string; message: string } | undefined {
  if (backend === 'vxlan' && !kernel.vxlan) {
    return {
      reason: 'KernelModuleMissing',
      message: 'backend vxlan needs the kernel vxlan module, which this node lacks (modprobe vxlan)',
    };
  }
  if (masquerade && !kernel.nftables) {
    return {
      reason: 'KernelModuleMissing',
      message: 'masquerade needs nftables (nf_tables, nft_masq), which this node lacks',
    };
  }
  return undefined;
}

/**
 * host-gw routes a peer's blocks via the peer's node address, which only works when that address is
 * on one of this node's connected subnets (one L2 segment). Splits peers into those and the rest,
 * so the rest can be reported by name instead of failing the whole route batch.
 */
export function splitOnLink(
  peers: PeerNode[],
  connected: { local: string; prefixlen: number }[],
): { onLink: PeerNode[]; offLink: PeerNode[] } {
  const nets = connected.flatMap((a) => {
    try {
      return [parseCidr(`${a.local}/${a.prefixlen}`, true)];
    } catch {
      return [];
    }
  });
  const onLink: PeerNode[] = [];
  const offLink: PeerNode[] = [];
  for (const p of peers) {
    const ip = p.nodeIP;
    (nets.some((n) => !ip.includes(':') === (n.family === 4) && contains(n, ip)) ? onLink : offLink).push(p);
  }
  return { onLink, offLink };
}
