// What a ClusterNetwork's attachments need from each node, judged against what the agents report
// in NodeNetworkStatus: the master (or host-device) interface must exist on the node, ipvlan needs
// a kernel with the ipvlan module and vlan one with 8021q. Pure; the operator reports each finding as Degraded,
// naming the node and the field. Nodes whose agent has not reported interfaces yet are not judged.
import type { ClusterNetwork } from '../api/clusternetwork.ts';
import type { NodeNetworkStatus } from '../api/nodestatus.ts';

export interface NodeFinding {
  field: string;
  message: string;
}

export function attachmentNodeFindings(cn: ClusterNetwork, statuses: NodeNetworkStatus[]): NodeFinding[] {
  const out: NodeFinding[] = [];
  const mine = statuses
    .filter((s) => s.status?.clusterNetwork === cn.metadata.name)
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  (cn.spec?.attachments ?? []).forEach((a, i) => {
    const base = `spec.attachments[${i}]`;
    const lacking = mine.filter(
      (s) => s.status?.interfaces && a.master && !s.status.interfaces.includes(a.master),
    );
    if (a.master && lacking.length) {
      out.push({
        field: `${base}.master`,
        message: `attachment ${a.name}: interface ${a.master} does not exist on node ${lacking.map((s) => s.metadata.name).join(', ')}`,
      });
    }
    const kernelLacks = (feature: 'ipvlan' | 'vlan', module: string) => {
      const nodes = mine.filter((s) => s.status?.kernel && s.status.kernel[feature] === false);
      if (nodes.length) {
        out.push({
          field: `${base}.type`,
          message: `attachment ${a.name}: the kernel of node ${nodes.map((s) => s.metadata.name).join(', ')} lacks ${feature} (load the ${module} module${feature === 'ipvlan' ? ' or use macvlan' : ''})`,
        });
      }
    };
    if (a.type === 'ipvlan') kernelLacks('ipvlan', 'ipvlan');
    if (a.type === 'vlan') kernelLacks('vlan', '8021q');
  });
  return out;
}
