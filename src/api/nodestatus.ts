// NodeNetworkStatus: what each node agent reports about itself (cluster-scoped, named after the
// node). The operator counts Ready ones into ClusterNetwork status; agents read peers' vtep data.
import type { KubeObject } from '../kube/object.ts';
import type { BackendMode, Condition } from './clusternetwork.ts';

/** One BGP session of a node's speaker, as parsed from the speaker's own report. */
export interface BgpSession {
  /** Session name in the speaker (derived from the peer address). */
  name: string;
  peerAddress?: string;
  peerAS?: number;
  /** peer: an entry of backend.bgp.peers; mesh: another node. */
  kind?: 'peer' | 'mesh';
  /** Idle, Connect, Active, OpenSent, OpenConfirm, Established. */
  state: string;
  established: boolean;
  /** When the session entered its current state, as the speaker reports it. */
  since?: string;
  /** Why it is not established (the speaker's last error), when known. */
  reason?: string;
  routesReceived?: number;
  routesAnnounced?: number;
}

export interface BgpStatus {
  /** e.g. "2/3": printer column. */
  established: string;
  routerID?: string;
  sessions: BgpSession[];
}

export interface KernelFeatures {
  vxlan: boolean;
  bridge: boolean;
  macvlan: boolean;
  ipvlan: boolean;
  /** 802.1Q (8021q module), for vlan attachments; absent in reports of older agents. */
  vlan?: boolean;
  wireguard: boolean;
  nftables: boolean;
}

export interface NodeNetworkStatusStatus {
  /** ClusterNetwork this agent serves. */
  clusterNetwork: string;
  /** ClusterNetwork generation the agent has programmed. */
  observedGeneration?: number;
  ready: boolean;
  /** Underlay address peers send to (Node InternalIP). */
  nodeIP: string;
  /** VXLAN device MAC, for peers' static FDB and neighbour entries. */
  vtepMAC?: string;
  /** VXLAN device address (first address of one of this node's blocks). */
  vtepIP?: string;
  backend: BackendMode;
  /** The node's BGP speaker and its sessions (mode bgp). */
  bgp?: BgpStatus;
  kernel: KernelFeatures;
  /** Host interfaces (pod veths left out): masters for attachments are checked against these. */
  interfaces?: string[];
  /** Blocks this node routes for (its own). */
  blocks?: string[];
  /** Peers currently programmed. */
  peers?: number;
  conditions?: Condition[];
  lastHeartbeatTime: string;
  /** NetworkPolicy enforcement (written by the policy enforcer with its own field manager). */
  policy?: PolicySyncStatus;
}

export interface PolicySyncStatus {
  synced: boolean;
  policies: number;
  rules: number;
  setElements: number;
  lastSyncTime: string;
  lastSyncMilliseconds: number;
  syncErrors: number;
  message?: string;
  unenforceable?: string[];
}

export type NodeNetworkStatus = KubeObject<Record<string, never>, NodeNetworkStatusStatus>;
