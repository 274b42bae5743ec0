// IPBlock: a block of a pool with affinity to one node. Allocations live inside the block object
// so one optimistic-concurrency write (resourceVersion precondition) both claims an address and
// records who holds it. Nodes never write each other's blocks except to borrow or release.
import type { KubeObject } from '../kube/object.ts';

export interface Allocation {
  namespace: string;
  pod: string;
  /** The pod's UID (CNI_ARGS K8S_POD_UID): a pod recreated under the same name is another holder. */
  podUID?: string;
  containerID: string;
  interface: string;
  /** RFC 3339 time of allocation; GC never frees an address younger than its grace period. */
  allocatedAt: string;
  /** Requested as a static IP: never handed to anyone else while held. */
  static?: boolean;
  /** Node whose agent allocated it; differs from the block's node when the address was borrowed. */
  node?: string;
  /** The CNI network (config name) that asked for it, so GC of that network judges only its own. */
  network?: string;
}

export interface IPBlockSpec {
  /** ClusterNetwork pool name, or `attachment:<name>` for extra-network pools. */
  pool: string;
  cidr: string;
  /** Node this block is affine to; empty for shared attachment pools. */
  node?: string;
  /** address -> holder */
  allocations: Record<string, Allocation>;
  /** Number of allocations, kept for the printer column. */
  used?: number;
}

export type IPBlock = KubeObject<IPBlockSpec, never>;

/** Labels on IPBlocks so a node lists only its own blocks. */
export const BLOCK_NODE_LABEL = 'network.trellis.dev/node';
export const BLOCK_POOL_LABEL = 'network.trellis.dev/pool';
