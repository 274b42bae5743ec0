// Periodic reconciliation of IPAM against the API: addresses held for pods that no longer exist
// on this node are released. IPAM skips allocations younger than a grace period, so an ADD in
// flight (its pod not yet visible to us, or visible on another list page) is never raced.
import type { LivePod, NodeIpam } from '../src/ipam/types.ts';
import type { KubeClient } from '../src/kube/client.ts';
import type { KubeObject } from '../src/kube/object.ts';
import { Builtin } from '../src/kube/resource.ts';
import type { Logger } from '../src/log/logger.ts';

type OrphanReleaser = NodeIpam & { releaseOrphans?: (pods: LivePod[], graceMs?: number) => Promise<number> };

export async function releaseOrphans(
  kube: KubeClient,
  ipam: OrphanReleaser,
  node: string,
  graceMs: number,
  log: Logger,
): Promise<number> {
  if (!ipam.releaseOrphans) return 0;
  const pods = await kube.listAll<KubeObject>(Builtin.Pod, undefined, {
    fieldSelector: `spec.nodeName=${node}`,
  });
  const live: LivePod[] = pods.items
    .filter((p) => !(p.status as { phase?: string } | undefined)?.phase?.match(/^(Succeeded|Failed)$/))
    .map((p) => ({
      namespace: p.metadata.namespace ?? '',
      name: p.metadata.name,
      ...(p.metadata.uid ? { uid: p.metadata.uid } : {}),
    }));
  const n = await ipam.releaseOrphans(live, graceMs);
  if (n > 0)
    log.info({ released: n, livePods: live.length }, 'released addresses of pods that no longer exist');
  return n;
}
