// The operator's watch caches: its ClusterNetworks, the Nodes (labels only), the agents'
// NodeNetworkStatuses, the IPBlocks and every kind it renders. Reconciles, drift repair, block
// reclaim and the status writer read from here; after start-up nothing lists. The framework shares
// the same informers for the kinds it watches (same resource and scope = same informer).
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import { ClusterNetworkResource, IPBlockResource, NodeNetworkStatusResource } from '../src/api/group.ts';
import type { IPBlock } from '../src/api/ipam.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
import { indexBy, type Informer } from '../src/kube/informer.ts';
import type { InformerSet } from '../src/kube/informers.ts';
import type { KubeObject } from '../src/kube/object.ts';
import { Builtin, type Resource } from '../src/kube/resource.ts';
import { CLUSTER_NETWORK_LABEL, MANAGED_BY, MANAGED_BY_LABEL } from '../src/render/index.ts';
import type { OperatorConfig } from './config.ts';
import { OWNED_KINDS } from './kinds.ts';

export const BY_CLUSTER_NETWORK = 'clusterNetwork';

export interface OperatorCaches {
  informers: InformerSet;
  clusterNetworks: Informer<ClusterNetwork>;
  nodes: Informer<KubeObject>;
  statuses: Informer<NodeNetworkStatus>;
  blocks: Informer<IPBlock>;
  /** Rendered kinds, by resource; each indexed by the owning ClusterNetwork's name. */
  owned: Map<Resource, Informer<KubeObject>>;
}

/** The scope the operator watches a rendered kind in (shared with the framework's drift watch). */
export function ownedScope(r: Resource, cfg: OperatorConfig): { labelSelector: string; namespace?: string } {
  // NADs live in the attachments' namespaces; everything else namespaced in ours (a Role grants it).
  const ours = r.namespaced && r !== Builtin.NetworkAttachmentDefinition;
  return {
    labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`,
    ...(ours ? { namespace: cfg.namespace } : {}),
  };
}

export function operatorCaches(informers: InformerSet, cfg: OperatorConfig): OperatorCaches {
  const owned = new Map<Resource, Informer<KubeObject>>();
  for (const r of OWNED_KINDS) {
    owned.set(
      r,
      informers.for(r, {
        ...ownedScope(r, cfg),
        indexers: { [BY_CLUSTER_NETWORK]: indexBy.label(CLUSTER_NETWORK_LABEL) },
      }),
    );
  }
  return {
    informers,
    clusterNetworks: informers.for<ClusterNetwork>(
      ClusterNetworkResource,
      cfg.clusterNetworkSelector ? { labelSelector: cfg.clusterNetworkSelector } : {},
    ),
    nodes: informers.for(Builtin.Node, { transform: trimNode }),
    statuses: informers.for<NodeNetworkStatus>(NodeNetworkStatusResource, { transform: trimStatus }),
    blocks: informers.for<IPBlock>(IPBlockResource),
    owned,
  };
}

/** A Node as the operator reads it: name, labels and annotations (underlay MTU); not its status. */
function trimNode(n: KubeObject): KubeObject {
  const { name, uid, resourceVersion, labels, annotations } = n.metadata;
  return {
    apiVersion: n.apiVersion,
    kind: n.kind,
    metadata: { name, uid, resourceVersion, labels, annotations },
  };
}

/**
 * What status counts: which ClusterNetwork the agent serves, whether it is ready, its backend and
 * BGP sessions (Degraded when none is established), kernel features and host interfaces (for
 * attachments); not heartbeats or conditions.
 */
function trimStatus(s: KubeObject): NodeNetworkStatus {
  const st = (s as NodeNetworkStatus).status;
  // kernel and interfaces: attachments that cannot run on a node are Degraded (src/multinet).
  const status = {
    clusterNetwork: st?.clusterNetwork,
    ready: st?.ready,
    backend: st?.backend,
    kernel: st?.kernel,
    ...(st?.interfaces ? { interfaces: st.interfaces } : {}),
  };
  return {
    apiVersion: s.apiVersion,
    kind: s.kind,
    metadata: { name: s.metadata.name, resourceVersion: s.metadata.resourceVersion },
    status: (st?.bgp ? { ...status, bgp: st.bgp } : status) as NodeNetworkStatus['status'],
  };
}
