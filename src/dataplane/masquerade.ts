// Masquerade for pod traffic leaving the cluster: SNAT to the node address only when the source
// is a pod and the destination is neither a pod (any cluster CIDR) nor a node, so the Kubernetes
// rules hold: pod to pod and pod to node keep the pod's own address. One nftables table per
// family, replaced whole in one transaction; applying the same input twice changes nothing.
import { deleteTable, replaceTable } from './nft.ts';

export interface MasqueradeSpec {
  /** nftables table name (one per family). */
  table: string;
  clusterCidrs: string[];
  nodeAddresses: string[];
}

function set(name: string, type: string, elements: string[], interval: boolean): string {
  const lines = [`  set ${name} {`, `    type ${type}`];
  if (interval) lines.push('    flags interval');
  if (elements.length > 0) lines.push(`    elements = { ${elements.join(', ')} }`);
  lines.push('  }');
  return lines.join('\n');
}

export function renderMasquerade(spec: MasqueradeSpec, family: 4 | 6): string {
  const v6 = family === 6;
  const cidrs = spec.clusterCidrs.filter((c) => c.includes(':') === v6);
  const nodes = [...new Set(spec.nodeAddresses.filter((a) => a.includes(':') === v6))].sort();
  const addr = v6 ? 'ip6' : 'ip';
  const type = v6 ? 'ipv6_addr' : 'ipv4_addr';
  return [
    set('cluster', type, cidrs, true),
    set('nodes', type, nodes, false),
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ${addr} saddr @cluster ${addr} daddr != @cluster ${addr} daddr != @nodes masquerade`,
    '  }',
  ].join('\n');
}

export async function applyMasquerade(spec: MasqueradeSpec): Promise<void> {
  await replaceTable('ip', spec.table, renderMasquerade(spec, 4));
  await replaceTable('ip6', spec.table, renderMasquerade(spec, 6));
}

export async function removeMasquerade(table: string): Promise<void> {
  await deleteTable('ip', table);
  await deleteTable('ip6', table);
}
