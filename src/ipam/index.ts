// IPAM's public face: the factory the agent calls, and the pieces the operator and CLI use.
// Everything else in src/ipam is an implementation detail.
import { BlockAllocator, type NodeIpamOptions } from './allocator.ts';
import type { ReconcilingNodeIpam } from './types.ts';

export type { NodeIpamOptions } from './allocator.ts';
export type * from './types.ts';
export {
  IpamError,
  PoolExhaustedError,
  StaticIPConflictError,
  StaticIPNotAllowedError,
  StaticIPOutOfPoolError,
  StaticIPUnclaimedBlockError,
  UnknownPoolError,
} from './errors.ts';
export { ALLOCATION_FAILED_REASON } from './events.ts';
export { ipamMetrics } from './metrics.ts';
export { poolsOf, type PoolDef } from './pools.ts';
export { blockName } from './block.ts';

/**
 * The IPAM of one node. Reads pools from the named ClusterNetwork (cached a few seconds) and the
 * Node's labels for pool nodeSelectors; keeps every allocation in IPBlock objects.
 */
export function createNodeIpam(opts: NodeIpamOptions): ReconcilingNodeIpam {
  return new BlockAllocator(opts);
}
export {
  reclaimOrphanBlocks,
  NODE_MISSING_SINCE_ANNOTATION,
  type ReclaimOptions,
  type ReclaimResult,
} from './reclaim.ts';
export { summarizePoolUsage } from './usage.ts';
export { ipamShow, ipamView, type IpamView } from './show.ts';
