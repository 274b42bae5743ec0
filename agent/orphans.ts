// Periodic reconciliation of IPAM against the API: addresses held for pods that no longer exist
// on this node are released. The live pods come from the agent's Pod watch cache (no list). IPAM
// skips allocations younger than a grace period, so an ADD in flight (its pod not yet visible to
// the cache) is never raced.
import type { NodeIpam, LivePod } from '../src/ipam/types.ts';
import type { Logger } from '../src/log/logger.ts';
import type { PodCache } from './pods.ts';

type OrphanReleaser = NodeIpam & { releaseOrphans?: (pods: LivePod[], graceMs?: number) => Promise<number> };

export async function releaseOrphans(
  pods: PodCache,
  ipam: OrphanReleaser,
  graceMs: number,
  log: Logger,
): Promise<number> {
  if (!ipam.releaseOrphans) return 0;
  const live = await pods.live();
  const n = await ipam.releaseOrphans(live, graceMs);
  if (n > 0)
    log.info({ released: n, livePods: live.length }, 'released addresses of pods that no longer exist');
  return n;
}
