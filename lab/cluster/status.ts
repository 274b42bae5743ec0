// `trellis status`: Trellis's health on any cluster, like `cilium status`: the operator
// Deployment, the agent DaemonSet and each node's agent pod and report, every ClusterNetwork's
// conditions and pools, and a list of what is Degraded and why. gatherStatus reads the API;
// summarizeStatus (pure, unit-tested) decides; renderClusterStatus prints.
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import { ClusterNetworkResource, NodeNetworkStatusResource } from '../../src/api/group.ts';
import type { NodeNetworkStatus } from '../../src/api/nodestatus.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin, type Resource } from '../../src/kube/resource.ts';
import { CLUSTER_NETWORK_LABEL } from '../../src/render/names.ts';

export const Deployment: Resource = {
  group: 'apps',
  version: 'v1',
  plural: 'deployments',
  kind: 'Deployment',
  namespaced: true,
};

type Condition = { type: string; status: string; reason?: string; message?: string };
export type DeploymentObj = KubeObject<
  { replicas?: number },
  { replicas?: number; readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number }
>;
export type DaemonSetObj = KubeObject<
  { template?: { spec?: { containers?: { image?: string }[] } } },
  {
    desiredNumberScheduled?: number;
    numberReady?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
  }
>;
export type PodObj = KubeObject<
  { nodeName?: string; containers?: { image?: string }[] },
  {
    phase?: string;
    podIP?: string;
    conditions?: Condition[];
    containerStatuses?: { ready?: boolean; restartCount?: number; image?: string }[];
  }
>;
export type NodeObj = KubeObject<unknown, { conditions?: Condition[] }>;

export interface StatusInput {
  operators: DeploymentObj[];
  operatorPods: PodObj[];
  agents: DaemonSetObj[];
  agentPods: PodObj[];
  clusterNetworks: ClusterNetwork[];
  reports: NodeNetworkStatus[];
  nodes: NodeObj[];
}

export interface AgentRow {
  node: string;
  nodeReady: boolean;
  pod?: string;
  podReady: boolean;
  restarts: number;
  image?: string;
  reportReady: boolean;
  backend?: string;
  peers?: number;
  message?: string;
}

export interface StatusReport {
  ok: boolean;
  operator: { name: string; namespace: string; desired: number; ready: number; pods: string[] } | undefined;
  agents: {
    name: string;
    namespace: string;
    desired: number;
    ready: number;
    updated: number;
    image?: string;
  }[];
  nodes: AgentRow[];
  clusterNetworks: {
    name: string;
    conditions: Condition[];
    pools: { name: string; cidr: string; allocated: number; capacity: number; blocks: number }[];
    nodes?: string;
  }[];
  degraded: string[];
}

const isTrue = (conds: Condition[] | undefined, type: string): boolean =>
  !!conds?.some((c) => c.type === type && c.status === 'True');

function podReady(p: PodObj | undefined): boolean {
  return !!p && p.status?.phase === 'Running' && isTrue(p.status?.conditions, 'Ready');
}

export function summarizeStatus(input: StatusInput): StatusReport {
  const degraded: string[] = [];
  const op = input.operators[0];
  const operator = op
    ? {
        name: op.metadata.name,
        namespace: op.metadata.namespace ?? '',
        desired: op.spec?.replicas ?? 1,
        ready: op.status?.readyReplicas ?? 0,
        pods: input.operatorPods.map(
          (p) => `${p.metadata.name} (${p.status?.phase ?? 'Unknown'}${podReady(p) ? ', ready' : ''})`,
        ),
      }
    : undefined;
  if (!operator)
    degraded.push(
      'operator: no Deployment labelled app.kubernetes.io/name=trellis-operator (is Trellis installed?)',
    );
  else if (operator.ready < 1)
    degraded.push(`operator: ${operator.namespace}/${operator.name} has no ready replica`);

  const agents = input.agents.map((ds) => ({
    name: ds.metadata.name,
    namespace: ds.metadata.namespace ?? '',
    desired: ds.status?.desiredNumberScheduled ?? 0,
    ready: ds.status?.numberReady ?? 0,
    updated: ds.status?.updatedNumberScheduled ?? 0,
    image: ds.spec?.template?.spec?.containers?.[0]?.image,
  }));
  for (const a of agents) {
    if (a.ready < a.desired) degraded.push(`agents: ${a.namespace}/${a.name} ${a.ready}/${a.desired} ready`);
    else if (a.updated < a.desired)
      degraded.push(`agents: ${a.namespace}/${a.name} rolling out (${a.updated}/${a.desired} updated)`);
  }
  if (input.clusterNetworks.length > 0 && agents.length === 0)
    degraded.push('agents: no agent DaemonSet yet (the operator renders it from the ClusterNetwork)');

  const nodes: AgentRow[] = input.nodes
    .map((n) => {
      const pod = input.agentPods.find((p) => p.spec?.nodeName === n.metadata.name);
      const rep = input.reports.find((r) => r.metadata.name === n.metadata.name)?.status;
      const notReady = rep?.conditions?.find((c) => c.status !== 'True' && c.type === 'Ready');
      const row: AgentRow = {
        node: n.metadata.name,
        nodeReady: isTrue(n.status?.conditions, 'Ready'),
        podReady: podReady(pod),
        restarts: pod?.status?.containerStatuses?.reduce((s, c) => s + (c.restartCount ?? 0), 0) ?? 0,
        reportReady: !!rep?.ready,
      };
      if (pod) row.pod = pod.metadata.name;
      const image = pod?.status?.containerStatuses?.[0]?.image ?? pod?.spec?.containers?.[0]?.image;
      if (image) row.image = image;
      if (rep?.backend) row.backend = rep.backend;
      if (rep?.peers !== undefined) row.peers = rep.peers;
      if (notReady?.message) row.message = notReady.message;
      return row;
    })
    .sort((a, b) => a.node.localeCompare(b.node));
  if (agents.length > 0) {
    for (const r of nodes) {
      if (!r.pod) degraded.push(`node ${r.node}: no agent pod`);
      else if (!r.podReady) degraded.push(`node ${r.node}: agent pod ${r.pod} not ready`);
      else if (!r.reportReady)
        degraded.push(`node ${r.node}: agent reports not ready${r.message ? `: ${r.message}` : ''}`);
      if (!r.nodeReady) degraded.push(`node ${r.node}: Node not Ready`);
    }
  }

  const clusterNetworks = input.clusterNetworks.map((cn) => {
    const conditions = (cn.status?.conditions ?? []) as Condition[];
    for (const c of conditions) {
      if (c.type === 'Degraded' && c.status === 'True')
        degraded.push(
          `ClusterNetwork ${cn.metadata.name} Degraded: ${c.reason ?? ''}${c.message ? `: ${c.message}` : ''}`,
        );
    }
    if (!isTrue(conditions, 'Ready') && !conditions.some((c) => c.type === 'Degraded' && c.status === 'True'))
      degraded.push(
        `ClusterNetwork ${cn.metadata.name} not Ready${conditions.find((c) => c.type === 'Ready')?.message ? `: ${conditions.find((c) => c.type === 'Ready')?.message}` : ''}`,
      );
    const row: StatusReport['clusterNetworks'][number] = {
      name: cn.metadata.name,
      conditions,
      pools: (cn.status?.pools ?? []).map((p) => ({
        name: p.name,
        cidr: p.cidr,
        allocated: p.allocated,
        capacity: p.capacity,
        blocks: p.blocks,
      })),
    };
    if (cn.status?.nodesReady) row.nodes = cn.status.nodesReady;
    return row;
  });
  if (input.clusterNetworks.length === 0)
    degraded.push(
      'no ClusterNetwork: create one (kubectl apply, or the chart with clusterNetwork.enabled=true)',
    );

  return { ok: degraded.length === 0, operator, agents, nodes, clusterNetworks, degraded };
}

export async function gatherStatus(kube: KubeClient): Promise<StatusInput> {
  const opSel = { labelSelector: 'app.kubernetes.io/name=trellis-operator' };
  const agentSel = { labelSelector: 'app.kubernetes.io/name=trellis-agent' };
  const optional = async <T extends KubeObject>(r: Resource): Promise<T[]> => {
    try {
      return (await kube.listAll<T>(r)).items;
    } catch {
      return []; // CRDs not installed: reported as "no ClusterNetwork"
    }
  };
  const [operators, operatorPods, agents, agentPods, clusterNetworks, reports, nodes] = await Promise.all([
    kube.listAll<DeploymentObj>(Deployment, undefined, opSel).then((l) => l.items),
    kube.listAll<PodObj>(Builtin.Pod, undefined, opSel).then((l) => l.items),
    // the rendered DaemonSet carries the ClusterNetwork label; its pods also the agent's name
    kube
      .listAll<DaemonSetObj>(Builtin.DaemonSet, undefined, { labelSelector: CLUSTER_NETWORK_LABEL })
      .then((l) => l.items),
    kube.listAll<PodObj>(Builtin.Pod, undefined, agentSel).then((l) => l.items),
    optional<ClusterNetwork>(ClusterNetworkResource),
    optional<NodeNetworkStatus>(NodeNetworkStatusResource),
    kube.listAll<NodeObj>(Builtin.Node).then((l) => l.items),
  ]);
  return { operators, operatorPods, agents, agentPods, clusterNetworks, reports, nodes };
}

export function renderClusterStatus(r: StatusReport, where: string): string {
  const L: string[] = [`Trellis on ${where}: ${r.ok ? 'OK' : 'DEGRADED'}`, ''];
  L.push(
    r.operator
      ? `Operator      ${r.operator.namespace}/${r.operator.name}  ${r.operator.ready}/${r.operator.desired} ready  ${r.operator.pods.join(', ')}`
      : 'Operator      not found',
  );
  for (const a of r.agents)
    L.push(
      `Agents        ${a.namespace}/${a.name}  ${a.ready}/${a.desired} ready, ${a.updated} updated  image ${a.image ?? '?'}`,
    );
  if (r.nodes.length) {
    L.push(
      '',
      'NODE          NODE-READY  AGENT-POD                      READY  REPORT  BACKEND  PEERS  RESTARTS',
    );
    for (const n of r.nodes) {
      L.push(
        `${n.node.padEnd(14)}${String(n.nodeReady).padEnd(12)}${(n.pod ?? '-').padEnd(31)}${String(n.podReady).padEnd(7)}${String(n.reportReady).padEnd(8)}${(n.backend ?? '-').padEnd(9)}${String(n.peers ?? '-').padEnd(7)}${n.restarts}`,
      );
    }
  }
  for (const cn of r.clusterNetworks) {
    L.push('', `ClusterNetwork ${cn.name}${cn.nodes ? `  nodes ready ${cn.nodes}` : ''}`);
    for (const c of cn.conditions)
      L.push(
        `  ${c.type.padEnd(12)} ${c.status.padEnd(6)} ${c.reason ?? ''}${c.message ? `: ${c.message}` : ''}`,
      );
    for (const p of cn.pools)
      L.push(
        `  pool ${p.name.padEnd(10)} ${p.cidr.padEnd(20)} ${p.allocated}/${p.capacity} addresses in ${p.blocks} blocks`,
      );
  }
  L.push('');
  if (r.degraded.length) {
    L.push('Degraded:');
    for (const d of r.degraded) L.push(`  - ${d}`);
  } else L.push('Nothing is degraded.');
  return L.join('\n');
}
