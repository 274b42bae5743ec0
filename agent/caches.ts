// The agent's watch caches, one per kind it reads, each trimmed to the fields the agent uses and
// narrowed server-side where the API allows (its ClusterNetwork by name). Everything the agent
// reads after start-up comes from here; nothing lists on a timer. Pods are watched cluster-wide
// ONCE: NetworkPolicy and MultiNetworkPolicy need every pod (peers on other nodes), and CNI and
// multinet read this node's pods through the `node` index of the same cache, so the API server
// serves one Pod watch per agent, not one per consumer.
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import { ClusterNetworkResource, IPBlockResource, NodeNetworkStatusResource } from '../src/api/group.ts';
import type { IPBlock } from '../src/api/ipam.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
import { indexBy, type Informer } from '../src/kube/informer.ts';
import type { InformerSet } from '../src/kube/informers.ts';
import type { KubeObject } from '../src/kube/object.ts';
import { Builtin } from '../src/kube/resource.ts';
import { MultiNetworkPolicyResource, type MultiNetworkPolicy } from '../src/multinet/index.ts';
import type { NetworkPolicy, PodObject } from '../src/policy/index.ts';
import type { NodeObject } from './plan.ts';

/** The index of `pods` by spec.nodeName (this node's pods: `pods.byIndex(POD_NODE_INDEX, node)`). */
export const POD_NODE_INDEX = 'node';

/** The watch caches the policy enforcers read (one each, shared with the rest of the agent). */
export interface PolicyCaches {
  /** Every pod in the cluster, trimmed (see trimPod), indexed by node. */
  pods: Informer<PodObject>;
  namespaces: Informer;
  networkPolicies: Informer<NetworkPolicy>;
}

/** The policy caches from a set: asking twice gives the same informers (one watch each). */
export function policyCaches(set: InformerSet): PolicyCaches {
  return {
    pods: set.for<PodObject>(Builtin.Pod, {
      transform: trimPod,
      indexers: { [POD_NODE_INDEX]: indexBy.nodeName },
    }),
    namespaces: set.for(Builtin.Namespace, { transform: trimMeta }),
    networkPolicies: set.for<NetworkPolicy>(Builtin.NetworkPolicy),
  };
}

export interface AgentCaches extends PolicyCaches {
  clusterNetwork: Informer<ClusterNetwork>;
  nodes: Informer<NodeObject>;
  blocks: Informer<IPBlock>;
  statuses: Informer<NodeNetworkStatus>;
  multiNetworkPolicies: Informer<MultiNetworkPolicy>;
}

export function agentCaches(set: InformerSet, clusterNetwork: string): AgentCaches {
  return {
    clusterNetwork: set.for<ClusterNetwork>(ClusterNetworkResource, {
      fieldSelector: `metadata.name=${clusterNetwork}`,
    }),
    nodes: set.for<NodeObject>(Builtin.Node, { transform: trimNode }),
    blocks: set.for<IPBlock>(IPBlockResource, { transform: trimBlock }),
    statuses: set.for<NodeNetworkStatus>(NodeNetworkStatusResource),
    multiNetworkPolicies: set.for<MultiNetworkPolicy>(MultiNetworkPolicyResource),
    ...policyCaches(set),
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

/** kubectl's copy of the whole object: the largest annotation, and nothing in the agent reads it. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * A Pod as the agent reads it: identity, labels, annotations (networks, network-status, static
 * IPs), node, hostNetwork, container ports (named ports) and addresses; not images, volumes or
 * conditions (~10 KiB a pod with managedFields, a few hundred bytes trimmed).
 */
export function trimPod(o: KubeObject): PodObject {
  const p = o as PodObject;
  const annotations = { ...p.metadata.annotations };
  delete annotations[LAST_APPLIED];
  const status = p.status ?? {};
  return {
    apiVersion: p.apiVersion,
    kind: p.kind,
    metadata: { ...pick(p.metadata), ...(p.metadata.annotations ? { annotations } : {}) },
    spec: {
      ...(p.spec?.nodeName ? { nodeName: p.spec.nodeName } : {}),
      ...(p.spec?.hostNetwork ? { hostNetwork: true } : {}),
      containers: (p.spec?.containers ?? []).map((c) => ({ ports: c.ports ?? [] })),
    },
    status: {
      ...(status.phase ? { phase: status.phase } : {}),
      ...(status.podIP ? { podIP: status.podIP } : {}),
      ...(status.podIPs ? { podIPs: status.podIPs.map((x) => ({ ip: x.ip })) } : {}),
      ...(status.hostIP ? { hostIP: status.hostIP } : {}),
    },
  };
}

/** Identity and labels only (namespaces: selectors read their labels). */
function trimMeta(o: KubeObject): KubeObject {
  return { apiVersion: o.apiVersion, kind: o.kind, metadata: pick(o.metadata) };
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
