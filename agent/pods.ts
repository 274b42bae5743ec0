// The pods bound to this node, read from the agent's one Pod watch cache (agent/caches.ts: every
// pod in the cluster, indexed by node; this node's are one index lookup), so an ADD
// reads the pod's annotations (static IP, networks) without a round trip to the API server. A pod
// the cache has not seen yet (the watch lags its creation) is read with a GET, so a cache miss
// costs time, never correctness.
import type { LivePod } from '../src/ipam/types.ts';
import type { KubeClient } from '../src/kube/client.ts';
import type { Informer } from '../src/kube/informer.ts';
import { keyOf, type KubeObject } from '../src/kube/object.ts';
import { Builtin } from '../src/kube/resource.ts';
import { POD_NODE_INDEX } from './caches.ts';

export interface PodInfo {
  uid?: string;
  annotations: Record<string, string>;
}

export class PodCache {
  private readonly kube: KubeClient;
  private readonly pods: Informer<KubeObject>;
  private readonly node: string;

  /** `pods` must carry the POD_NODE_INDEX index (agentCaches() adds it). */
  constructor(kube: KubeClient, pods: Informer<KubeObject>, node: string) {
    this.kube = kube;
    this.pods = pods;
    this.node = node;
  }

  private static info(p: KubeObject): PodInfo {
    return { ...(p.metadata.uid ? { uid: p.metadata.uid } : {}), annotations: p.metadata.annotations ?? {} };
  }

  /** The pod's annotations: from the cache, else from the API; undefined when the pod does not exist. */
  async get(namespace: string, name: string): Promise<PodInfo | undefined> {
    const hit = this.pods.get(keyOf(namespace, name));
    if (hit) return PodCache.info(hit);
    const pod = await this.kube.getOrUndefined<KubeObject>(Builtin.Pod, name, namespace);
    return pod ? PodCache.info(pod) : undefined;
  }

  /**
   * Whether the pod exists, from the cache alone (no API request): undefined until the cache has
   * listed. For periodic questions (STATUS) where a GET per gone pod would cost a request each time.
   */
  exists(namespace: string, name: string): boolean | undefined {
    if (!this.pods.hasSynced()) return undefined;
    return this.pods.get(keyOf(namespace, name)) !== undefined;
  }

  /** Pods on this node that still run or may run (not Succeeded/Failed), once the cache has synced. */
  async live(): Promise<LivePod[]> {
    await this.pods.synced;
    return this.pods
      .byIndex(POD_NODE_INDEX, this.node)
      .filter((p) => !/^(Succeeded|Failed)$/.test((p.status as { phase?: string } | undefined)?.phase ?? ''))
      .map((p) => ({
        namespace: p.metadata.namespace ?? '',
        name: p.metadata.name,
        ...(p.metadata.uid ? { uid: p.metadata.uid } : {}),
      }));
  }
}
