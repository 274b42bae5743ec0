// The pods bound to this node, kept from a list+watch, so an ADD reads the pod's annotations
// (static IP) without a round trip to the API server. A pod the cache has not seen yet (the watch
// lags its creation) is read with a GET, so a cache miss costs time, never correctness.
import type { KubeClient } from '../src/kube/client.ts';
import type { KubeObject } from '../src/kube/object.ts';
import { Builtin } from '../src/kube/resource.ts';
import type { Logger } from '../src/log/logger.ts';

export interface PodInfo {
  uid?: string;
  annotations: Record<string, string>;
}

export class PodCache {
  private readonly kube: KubeClient;
  private readonly node: string;
  private readonly log: Logger;
  private readonly pods = new Map<string, PodInfo>();

  constructor(kube: KubeClient, node: string, log: Logger) {
    this.kube = kube;
    this.node = node;
    this.log = log;
  }

  private static key(namespace: string, name: string): string {
    return `${namespace}/${name}`;
  }

  private static info(p: KubeObject): PodInfo {
    return { ...(p.metadata.uid ? { uid: p.metadata.uid } : {}), annotations: p.metadata.annotations ?? {} };
  }

  /** The pod's annotations: from the cache, else from the API; undefined when the pod does not exist. */
  async get(namespace: string, name: string): Promise<PodInfo | undefined> {
    const hit = this.pods.get(PodCache.key(namespace, name));
    if (hit) return hit;
    const pod = await this.kube.getOrUndefined<KubeObject>(Builtin.Pod, name, namespace);
    return pod ? PodCache.info(pod) : undefined;
  }

  /** Keeps the cache filled until the signal aborts (list, then watch; re-list after any break). */
  async run(signal: AbortSignal): Promise<void> {
    const fieldSelector = `spec.nodeName=${this.node}`;
    while (!signal.aborted) {
      try {
        const list = await this.kube.listAll<KubeObject>(Builtin.Pod, undefined, { fieldSelector });
        this.pods.clear();
        for (const p of list.items)
          this.pods.set(PodCache.key(p.metadata.namespace ?? '', p.metadata.name), PodCache.info(p));
        for await (const ev of this.kube.watch<KubeObject>(Builtin.Pod, undefined, {
          fieldSelector,
          resourceVersion: list.metadata.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: 300,
          signal,
        })) {
          if (ev.type === 'ERROR') break;
          if (ev.type === 'BOOKMARK') continue;
          const key = PodCache.key(ev.object.metadata.namespace ?? '', ev.object.metadata.name);
          if (ev.type === 'DELETED') this.pods.delete(key);
          else this.pods.set(key, PodCache.info(ev.object));
        }
      } catch (err: unknown) {
        if (signal.aborted) return;
        this.log.warn({ err: String(err) }, 'pod watch failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}
