// backend.mode bgp: a configured session that is not established (a wrong AS, an address nobody
// answers, a wrong password) leaves the fabric without some routes, so the ClusterNetwork is
// Degraded, naming the node and each such peer with the speaker's reason. A node with no
// established session at all cannot exchange routes at all, and the message says so first.
// Pure; the status writer calls it with the NodeNetworkStatuses of the operator's cache.
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';

/** One message per node (of this ClusterNetwork, among `desired`) that reports a BGP session down, or none. */
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
    if (!sessions) continue;
    const down = sessions.filter((x) => !x.established);
    const peers = down
      .map((x) => `${x.peerAddress ?? x.name} (${x.state}${x.reason ? `: ${x.reason}` : ''})`)
      .join(', ');
    const node = s.metadata.name;
    if (!sessions.length) out.push(`node ${node} has no established BGP session: no peer configured for it`);
    else if (down.length === sessions.length)
      out.push(`node ${node} has no established BGP session: ${peers}`);
    else if (down.length) out.push(`node ${node} has BGP sessions not established: ${peers}`);
  }
  return out;
}
