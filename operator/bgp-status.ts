// backend.mode bgp: a node whose BGP speaker has no established session cannot exchange routes, so
// the ClusterNetwork is Degraded, naming the node and each of its peers with the speaker's reason.
// Pure; the status computation calls it with the NodeNetworkStatus objects it already lists.
import { NodeNetworkStatusResource } from '../src/api/group.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { isApiError } from '../src/kube/errors.ts';

/** One message per node (of this ClusterNetwork, among `desired`) that reports BGP with no established session. */
export function bgpSessionProblems(
  clusterNetwork: string,
  desired: ReadonlySet<string>,
  statuses: readonly NodeNetworkStatus[],
): string[] {
  const out: string[] = [];
  for (const s of [...statuses].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const st = s.status;
    if (!st || st.clusterNetwork !== clusterNetwork || st.backend !== 'bgp' || !desired.has(s.metadata.name))
      continue;
    const sessions = st.bgp?.sessions;
    if (!sessions || sessions.some((x) => x.established)) continue;
    const peers = sessions.length
      ? sessions
          .map((x) => `${x.peerAddress ?? x.name} (${x.state}${x.reason ? `: ${x.reason}` : ''})`)
          .join(', ')
      : 'no peer configured for it';
    out.push(`node ${s.metadata.name} has no established BGP session: ${peers}`);
  }
  return out;
}

/** Lists NodeNetworkStatus and applies bgpSessionProblems; none when the CRD is not installed yet. */
export async function listBgpSessionProblems(
  kube: KubeClient,
  clusterNetwork: string,
  desired: ReadonlySet<string>,
): Promise<string[]> {
  try {
    const list = await kube.listAll<NodeNetworkStatus>(NodeNetworkStatusResource);
    return bgpSessionProblems(clusterNetwork, desired, list.items);
  } catch (err: unknown) {
    if (isApiError(err, 404)) return [];
    throw err;
  }
}
