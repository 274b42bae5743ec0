// backend.mode bgp: a node whose BGP speaker has no established session cannot exchange routes, so
// the ClusterNetwork is Degraded, naming the node and each of its peers with the speaker's reason.
// Pure; the status writer calls it with the NodeNetworkStatuses of the operator's cache.
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';

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
