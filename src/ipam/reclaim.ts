// Operator-side housekeeping: blocks of nodes that are gone. A Node object that no longer exists
// means the node was deleted; we wait a grace period (recorded as an annotation on the block, so an
// operator restart does not reset the clock) before touching its blocks, then drop the addresses of
// pods that no longer exist, delete blocks left empty, and strip the node affinity from blocks
// that still hold live pods' addresses (any node may adopt them; a later pass deletes them empty).
// Every write carries the resourceVersion read, so a racing agent always wins.
import { IPBlockResource } from '../api/group.ts';
import { BLOCK_NODE_LABEL, type Allocation, type IPBlock } from '../api/ipam.ts';
import type { KubeClient } from '../kube/client.ts';
import { isApiError } from '../kube/errors.ts';
import { Builtin } from '../kube/resource.ts';
import type { Logger } from '../log/logger.ts';
import { allocatingNode, olderThan, orphanOf } from './block.ts';
import { ATTACHMENT_POOL_PREFIX } from './pools.ts';
import type { LivePod } from './types.ts';

export const NODE_MISSING_SINCE_ANNOTATION = 'network.trellis.dev/node-missing-since';

export interface ReclaimOptions {
  /** How long a node must have been gone before its blocks are reclaimed. */
  graceSeconds: number;
  /** Only blocks of these pools (e.g. one ClusterNetwork's). @default every block */
  pools?: string[];
  /** Names of the Nodes that exist, from the caller's watch cache. @default listed from the API */
  nodes?: string[];
  /** The IPBlocks, from the caller's watch cache (whole objects). @default listed from the API */
  blocks?: IPBlock[];
  logger?: Logger;
}

export interface ReclaimResult {
  /** Blocks whose node was found missing this pass (grace clock started). */
  marked: string[];
  /** Blocks deleted because they were empty. */
  deleted: string[];
  /** Blocks that lost their node affinity but still hold live pods' addresses. */
  released: string[];
  /** Addresses of pods that no longer exist, dropped. */
  dropped: number;
}

export async function reclaimOrphanBlocks(kube: KubeClient, opts: ReclaimOptions): Promise<ReclaimResult> {
  const result: ReclaimResult = { marked: [], deleted: [], released: [], dropped: 0 };
  const graceMs = opts.graceSeconds * 1000;
  const nodes = new Set(opts.nodes ?? (await kube.listAll(Builtin.Node)).items.map((n) => n.metadata.name));
  const blocks = (opts.blocks ?? (await kube.listAll<IPBlock>(IPBlockResource)).items).filter(
    (b) => b.spec && (!opts.pools || opts.pools.includes(b.spec.pool)),
  );
  const podHolds = podLookup(kube);
  const now = Date.now();

  for (const block of blocks) {
    const spec = block.spec!;
    const name = block.metadata.name;
    const since = block.metadata.annotations?.[NODE_MISSING_SINCE_ANNOTATION];
    try {
      if (spec.node && nodes.has(spec.node)) {
        if (since)
          await kube.jsonPatch(IPBlockResource, name, [
            { op: 'remove', path: `/metadata/annotations/${escape(NODE_MISSING_SINCE_ANNOTATION)}` },
          ]);
        continue;
      }
      if (spec.node) {
        if (!since) {
          await kube.mergePatch(IPBlockResource, name, {
            metadata: {
              annotations: { [NODE_MISSING_SINCE_ANNOTATION]: new Date(now).toISOString() },
              resourceVersion: block.metadata.resourceVersion,
            },
          });
          result.marked.push(name);
          opts.logger?.info(
            { block: name, node: spec.node },
            'node of block is gone; reclaiming after the grace period',
          );
          if (graceMs > 0) continue;
        } else if (now - Date.parse(since) < graceMs) continue;
      } else if (spec.pool.startsWith(ATTACHMENT_POOL_PREFIX)) {
        continue; // shared blocks have no node by design; agents release their own addresses
      }
      // The block's node is gone (or it was released earlier): keep only live pods' addresses.
      const keep: Record<string, Allocation> = {};
      let dropped = 0;
      for (const [ip, a] of Object.entries(spec.allocations ?? {})) {
        const nodeAlive = nodes.has(allocatingNode(spec, a) ?? '');
        if (nodeAlive && !olderThan(a, graceMs, now)) keep[ip] = a;
        else if (await podHolds(a)) keep[ip] = a;
        else dropped++;
      }
      if (Object.keys(keep).length === 0) {
        await kube.delete(IPBlockResource, name, undefined, {
          resourceVersion: block.metadata.resourceVersion,
        });
        result.deleted.push(name);
        result.dropped += dropped;
        opts.logger?.info({ block: name, dropped }, 'deleted the empty block of a gone node');
        continue;
      }
      const labels = { ...block.metadata.labels };
      delete labels[BLOCK_NODE_LABEL];
      const annotations = { ...block.metadata.annotations };
      delete annotations[NODE_MISSING_SINCE_ANNOTATION];
      const nextSpec = { ...spec, allocations: keep, used: Object.keys(keep).length };
      delete nextSpec.node;
      if (dropped === 0 && !spec.node) continue;
      await kube.replace(IPBlockResource, {
        ...block,
        metadata: { ...block.metadata, labels, annotations },
        spec: nextSpec,
      });
      result.released.push(name);
      result.dropped += dropped;
      opts.logger?.info(
        { block: name, kept: Object.keys(keep).length, dropped },
        "released a gone node's block still holding live pods",
      );
    } catch (err: unknown) {
      // 409: an agent wrote the block meanwhile; the next pass looks again.
      if (isApiError(err, 409) || isApiError(err, 404)) continue;
      throw err;
    }
  }
  return result;
}

/** Whether the allocation's pod still exists: same name and, where recorded, same UID. */
function podLookup(kube: KubeClient): (a: Allocation) => Promise<boolean> {
  const cache = new Map<string, Promise<LivePod[]>>();
  return async (a) => {
    const key = `${a.namespace}/${a.pod}`;
    let p = cache.get(key);
    if (!p) {
      p = kube
        .getOrUndefined(Builtin.Pod, a.pod, a.namespace)
        .then((x) => (x ? [{ namespace: a.namespace, name: a.pod, uid: x.metadata.uid }] : []));
      cache.set(key, p);
    }
    return !orphanOf(await p)(a);
  };
}

function escape(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}
