// ClusterNetwork: the one resource a platform team writes. Types mirror crds/clusternetwork.yaml;
// defaults live in the CRD schema so `kubectl get -o yaml` shows what is in force.
import type { KubeObject } from '../kube/object.ts';

import type { LabelSelector } from '../selector/index.ts';

export type { LabelSelector };

export interface PodPool {
  /** DNS-1123 label, unique across pools. */
  name: string;
  /** IPv4 or IPv6 CIDR, e.g. 10.244.0.0/16 or fd00:10:244::/56. */
  cidr: string;
  /** Prefix length of the per-node blocks carved from the pool. @default 26 (v4), 122 (v6) */
  blockSize?: number;
  /** Nodes that may claim blocks from this pool. @default all nodes */
  nodeSelector?: LabelSelector;
  /** Who may choose an address of this pool. @default nobody (allocation only) */
  staticAddresses?: StaticAddressPolicy;
}

/** Namespaces whose pods may ask for a static address (annotation or runtimeConfig.ips); `*` for all. */
export interface StaticAddressPolicy {
  namespaces: string[];
}

export type BackendMode = 'vxlan' | 'host-gw' | 'bgp';

/** A key of a Secret (ClusterNetwork is cluster-scoped, so the namespace may be given). */
export interface SecretKeyRef {
  /** @default the agent's namespace */
  namespace?: string;
  name: string;
  key: string;
}

export interface BgpPeer {
  /** IPv4 or IPv6 address of the peer, unique across peers. */
  address: string;
  /** The peer's AS number, 1..4294967295. */
  asNumber: number;
  /** Nodes that peer with it. @default all nodes */
  nodeSelector?: LabelSelector;
  /** TCP MD5 password for the session. */
  password?: { secretKeyRef: SecretKeyRef };
}

/** backend.bgp: every node runs a BGP speaker announcing only its own pod blocks. */
export interface BgpSpec {
  /** The cluster's AS number (every node's), 1..4294967295. */
  asNumber: number;
  /** Every node peers with every other node (iBGP). @default true */
  nodeToNodeMesh?: boolean;
  /** How long peers keep our routes while our speaker restarts. @default 120 */
  gracefulRestartSeconds?: number;
  peers?: BgpPeer[];
}

export interface Backend {
  /** @default vxlan */
  mode: BackendMode;
  /** Required iff mode is bgp. */
  bgp?: BgpSpec;
  /** VXLAN network identifier. @default 4096 */
  vni?: number;
  /** VXLAN UDP port. @default 4789 */
  port?: number;
  /** Pod interface MTU. @default 1450 for vxlan, 1500 for host-gw and bgp */
  mtu?: number;
}

export type AttachmentType = 'macvlan' | 'ipvlan' | 'bridge' | 'host-device' | 'vlan';

/** A pool for an extra network, shared by all nodes (not per-node blocks). */
export interface AttachmentPool {
  cidr: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
  exclude?: string[];
  /** Pod namespaces that may draw from this pool besides the attachment's own; `*` for all. */
  namespaces?: string[];
  /** Who may choose an address of this pool. @default nobody (allocation only) */
  staticAddresses?: StaticAddressPolicy;
}

export interface Attachment {
  /** NetworkAttachmentDefinition name, unique across attachments. */
  name: string;
  /** Namespace of the NetworkAttachmentDefinition. @default default */
  namespace?: string;
  type: AttachmentType;
  /** Host interface for macvlan, ipvlan, vlan and host-device. */
  master?: string;
  /** macvlan mode. @default bridge */
  mode?: 'bridge' | 'private' | 'vepa' | 'passthru';
  /** ipvlan mode. @default l2 */
  ipvlanMode?: 'l2' | 'l3' | 'l3s';
  /** Bridge name for type bridge. */
  bridge?: string;
  vlanId?: number;
  mtu?: number;
  pool?: AttachmentPool;
}

export interface AgentSettings {
  /** @default ghcr-less local image name; the lab maps the command, not the image */
  image?: string;
  /** @default info */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** @default /etc/cni/net.d */
  cniConfDir?: string;
  /** @default /opt/cni/bin */
  cniBinDir?: string;
  /** cniVersion of the pod network's conflist; 1.1.0 needs every chained plugin to speak 1.1. @default 1.0.0 */
  cniVersion?: '1.0.0' | '1.1.0';
  /** @default /run/trellis/cni.sock */
  socketPath?: string;
  /** Extra tolerations, node selector etc. are future work. */
  nodeSelector?: Record<string, string>;
}

export interface ClusterNetworkSpec {
  pools: PodPool[];
  backend: Backend;
  /** Masquerade pod traffic leaving the cluster CIDRs. @default true */
  masquerade?: boolean;
  attachments?: Attachment[];
  agent?: AgentSettings;
}

export interface Condition {
  type: 'Ready' | 'Progressing' | 'Degraded' | string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface PoolUsage {
  name: string;
  cidr: string;
  capacity: number;
  allocated: number;
  blocks: number;
}

export interface ClusterNetworkStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  nodes?: { desired: number; ready: number };
  pools?: PoolUsage[];
  /** e.g. "2/3": printer column */
  nodesReady?: string;
  /** Number of pools: printer column */
  poolCount?: number;
}

export type ClusterNetwork = KubeObject<ClusterNetworkSpec, ClusterNetworkStatus>;

/** Block size used when a pool gives none (the CRD cannot default by address family). */
export function poolBlockSize(pool: PodPool): number {
  return pool.blockSize ?? (pool.cidr.includes(':') ? 122 : 26);
}

/** Pod interface MTU in force: the spec's, else 1450 for vxlan (50 bytes of encapsulation) and 1500 for host-gw and bgp. */
export function backendMtu(backend: Partial<Backend> | undefined): number {
  return backend?.mtu ?? ((backend?.mode ?? 'vxlan') === 'vxlan' ? 1450 : 1500);
}
