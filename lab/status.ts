// `trellis lab status`: what the lab is made of and whether it is alive: nodes and their netns,
// agent and kubelet processes, pods with their IPs, and the ClusterNetwork's conditions.
import { ClusterNetworkResource, NodeNetworkStatusResource } from '../src/api/group.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { agentPid } from './agents.ts';
import { labPods, type PodView } from './podcmd.ts';
import { netnsExists } from './sh.ts';
import { livePid, type LabState } from './state.ts';

export interface LabStatus {
  stateDir: string;
  kubeconfig: string;
  backend: string;
  standIn: boolean;
  apiServer: { reachable: boolean; error?: string };
  nodes: {
    name: string;
    ip: string;
    netns: boolean;
    agentPid?: number;
    kubeletPid?: number;
    /** what the agent reports in its NodeNetworkStatus */
    agentReady?: boolean;
    agentMessage?: string;
    kernelLacks?: string[];
  }[];
  pods: PodView[];
  clusterNetwork?: {
    conditions: { type: string; status: string; reason: string; message: string }[];
    nodesReady?: string;
  };
}

export async function labStatus(kube: KubeClient, state: LabState): Promise<LabStatus> {
  const st: LabStatus = {
    stateDir: state.stateDir,
    kubeconfig: state.kubeconfig,
    backend: state.backend,
    standIn: state.standIn,
    apiServer: { reachable: true },
    nodes: state.nodes.map((n) => ({
      name: n.name,
      ip: n.ip,
      netns: netnsExists(n.netns),
      agentPid: agentPid(state, n),
      kubeletPid: livePid(state.stateDir, `kubelet-${n.name}`),
    })),
    pods: [],
  };
  try {
    st.pods = await labPods(kube, state);
    const reports = await kube.listAll<NodeNetworkStatus>(NodeNetworkStatusResource).catch(() => undefined);
    for (const n of st.nodes) {
      const r = reports?.items.find((x) => x.metadata.name === n.name)?.status;
      if (!r) continue;
      n.agentReady = r.ready;
      n.agentMessage = r.conditions?.find((c) => c.type === 'Ready')?.message;
      n.kernelLacks = Object.entries(r.kernel ?? {})
        .filter(([, has]) => !has)
        .map(([f]) => f);
    }
    const cn = await kube.getOrUndefined<ClusterNetwork>(ClusterNetworkResource, 'default');
    if (cn) {
      st.clusterNetwork = {
        conditions: (cn.status?.conditions ?? []).map((c) => ({
          type: c.type,
          status: c.status,
          reason: c.reason,
          message: c.message,
        })),
        nodesReady: cn.status?.nodesReady,
      };
    }
  } catch (err: unknown) {
    st.apiServer = { reachable: false, error: err instanceof Error ? err.message : String(err) };
  }
  return st;
}

export function renderStatus(s: LabStatus): string {
  const lines = [
    `lab in ${s.stateDir} (backend ${s.backend}${s.standIn ? ', stand-in CNI' : ''})`,
    `kubeconfig: ${s.kubeconfig}`,
  ];
  if (!s.apiServer.reachable) lines.push(`API server NOT reachable: ${s.apiServer.error}`);
  lines.push('', 'NODE      IP               NETNS  AGENT           KUBELET         AGENT REPORT');
  for (const n of s.nodes) {
    const proc = (pid?: number) => (pid ? `running (${pid})` : 'DOWN');
    const report =
      n.agentReady === undefined ? '-' : `${n.agentReady ? 'ready' : 'NOT READY'}: ${n.agentMessage ?? ''}`;
    lines.push(
      `${n.name.padEnd(10)}${n.ip.padEnd(17)}${(n.netns ? 'yes' : 'NO').padEnd(7)}${proc(n.agentPid).padEnd(16)}${proc(n.kubeletPid).padEnd(16)}${report}`,
    );
  }
  const lacks = [...new Set(s.nodes.flatMap((n) => n.kernelLacks ?? []))];
  if (lacks.length) lines.push(`kernel lacks (reported by the agents): ${lacks.join(', ')}`);
  lines.push('', 'POD                                 NODE      IP               PHASE');
  for (const p of s.pods)
    lines.push(
      `${`${p.namespace}/${p.name}`.padEnd(36)}${p.node.padEnd(10)}${(p.ip || '-').padEnd(17)}${p.phase}`,
    );
  if (s.pods.length === 0) lines.push('(no pods; `trellis lab demo` creates two per node)');
  if (s.clusterNetwork) {
    lines.push(
      '',
      `ClusterNetwork default${s.clusterNetwork.nodesReady ? ` (nodes ready ${s.clusterNetwork.nodesReady})` : ''}:`,
    );
    for (const c of s.clusterNetwork.conditions)
      lines.push(`  ${c.type}=${c.status} ${c.reason}: ${c.message}`);
  }
  return lines.join('\n');
}
