// The agent's watch caches, one per kind it reads, each trimmed to the fields the agent uses and
// narrowed server-side where the API allows (its ClusterNetwork by name, its own node's Pods).
// Everything the agent reads after start-up comes from here; nothing lists on a timer.
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import { ClusterNetworkResource, IPBlockResource, NodeNetworkStatusResource } from '../src/api/group.ts';
import type { IPBlock } from '../src/api/ipam.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
import type { Informer } from '../src/kube/informer.ts';
import type { InformerSet } from '../src/kube/informers.ts';
import type { KubeObject } from '../src/kube/object.ts';
import { Builtin } from '../src/kube/resource.ts';
import type { NodeObject } from './plan.ts';

export interface AgentCaches {
  clusterNetwork: Informer<ClusterNetwork>;
  nodes: Informer<NodeObject>;
  blocks: Informer<IPBlock>;
  statuses: Informer<NodeNetworkStatus>;
  /** Pods bound to this node only (field selector spec.nodeName). */
  pods: Informer<KubeObject>;
}

export function agentCaches(set: InformerSet, clusterNetwork: string, node: string): AgentCaches {
  return {
    clusterNetwork: set.for<ClusterNetwork>(ClusterNetworkResource, {
      fieldSelector: `metadata.name=${clusterNetwork}`,
    }),
    nodes: set.for<NodeObject>(Builtin.Node, { transform: trimNode }),
    blocks: set.for<IPBlock>(IPBlockResource, { transform: trimBlock }),
    statuses: set.for<NodeNetworkStatus>(NodeNetworkStatusResource),
    pods: set.for<KubeObject>(Builtin.Pod, { fieldSelector: `spec.nodeName=${node}`, transform: trimPod }),
  };
}

/** A Node as the agent reads it: labels (pool selectors) and addresses; not images or conditions. */
function trimNode(n: KubeObject): NodeObject {
  const status = n.status as NodeObject['status'];
  return {
    apiVersion: n.apiVersion,
    kind: n.kind,
    metadata: pick(n.metadata),
    status: { addresses: status?.addresses ?? [] },
  };
}

/** An IPBlock without its allocations: the data plane needs which node routes which CIDR. */
function trimBlock(b: KubeObject): IPBlock {
  const spec = (b as IPBlock).spec;
  const out: IPBlock = { apiVersion: b.apiVersion, kind: b.kind, metadata: pick(b.metadata) };
  if (spec)
    out.spec = {
      pool: spec.pool,
      cidr: spec.cidr,
      allocations: {},
      used: spec.used,
      ...(spec.node ? { node: spec.node } : {}),
    };
  return out;
}

/** A Pod as the agent reads it: identity, labels, annotations (networks, static IPs) and phase. */
function trimPod(p: KubeObject): KubeObject {
  const phase = (p.status as { phase?: string } | undefined)?.phase;
  return {
    apiVersion: p.apiVersion,
    kind: p.kind,
    metadata: {
      ...pick(p.metadata),
      ...(p.metadata.annotations ? { annotations: p.metadata.annotations } : {}),
    },
    spec: { nodeName: (p.spec as { nodeName?: string } | undefined)?.nodeName },
    status: phase ? { phase } : {},
  };
}

function pick(m: KubeObject['metadata']): KubeObject['metadata'] {
  const out: KubeObject['metadata'] = { name: m.name };
  if (m.namespace) out.namespace = m.namespace;
  if (m.uid) out.uid = m.uid;
  if (m.resourceVersion) out.resourceVersion = m.resourceVersion;
  if (m.generation !== undefined) out.generation = m.generation;
  if (m.labels) out.labels = m.labels;
  if (m.deletionTimestamp) out.deletionTimestamp = m.deletionTimestamp;
  return out;
}
