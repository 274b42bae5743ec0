// NodeNetworkStatus: what each node agent reports about itself (cluster-scoped, named after the
// node). The operator counts Ready ones into ClusterNetwork status; agents read peers' vtep data.
import type { KubeObject } from '../kube/object.ts';
import type { Condition } from './clusternetwork.ts';

export interface KernelFeatures {
  vxlan: boolean;
  bridge: boolean;
  macvlan: boolean;
  ipvlan: boolean;
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
  backend: 'vxlan' | 'host-gw';
  kernel: KernelFeatures;
  /** Blocks this node routes for (its own). */
  blocks?: string[];
  /** Peers currently programmed. */
  peers?: number;
  conditions?: Condition[];
  lastHeartbeatTime: string;
}

export type NodeNetworkStatus = KubeObject<Record<string, never>, NodeNetworkStatusStatus>;
