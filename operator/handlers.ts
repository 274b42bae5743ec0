// The operator's handlers, registered on a framework Registry. ClusterNetwork: reconcile on create,
// on spec updates and on resume (an operator restart re-applies, catching drift while it was down);
// clean up on delete; reclaim blocks of deleted nodes. Owned kinds: drift repair. Status is not
// written here: the status writer follows the caches (Nodes, NodeNetworkStatuses, IPBlocks).
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import { ClusterNetworkResource } from '../src/api/group.ts';
import { Registry, postEvent, type HandlerFn } from '../src/framework/index.ts';
import { reclaimOrphanBlocks } from '../src/ipam/reclaim.ts';
import { poolsOf } from '../src/ipam/pools.ts';
import { ownedScope } from './cache.ts';
import type { OperatorContext } from './context.ts';
import { driftHandler } from './drift.ts';
import { OWNED_KINDS } from './kinds.ts';
import { cleanupClusterNetwork, reconcileClusterNetwork } from './reconcile.ts';

export function buildRegistry(ctx: OperatorContext): Registry {
  const registry = new Registry();
  const CN = ClusterNetworkResource;
  if (ctx.config.clusterNetworkSelector)
    registry.scope(CN, { labelSelector: ctx.config.clusterNetworkSelector });

  // Applies and prunes; the status writer (status-writer.ts) writes the status it implies.
  const reconcile: HandlerFn = async ({ body, logger }) => {
    const res = await reconcileClusterNetwork(ctx, body as ClusterNetwork, logger);
    if (res.findings.length) {
      // Not an error to retry (nothing changes until the spec or the nodes do), but worth telling.
      const message = res.findings.map((f) => `${f.field}: ${f.message}`).join('; ');
      await postEvent(ctx.kube, body, { type: 'Warning', reason: 'Unrealisable', message }, logger);
    }
    if (res.applyError) throw new Error(res.applyError);
  };
  const policy = { backoff: 2, backoffCap: 60 };
  registry.on.create(CN, { id: 'render', ...policy }, reconcile);
  registry.on.update(CN, { id: 'rerender', field: 'spec', ...policy }, reconcile);
  registry.on.resume(CN, { id: 'resume', ...policy }, reconcile);

  registry.on.delete(CN, { id: 'cleanup', ...policy }, async ({ meta, logger }) => {
    ctx.status.forget(meta.name);
    const deleted = await cleanupClusterNetwork(ctx, meta.name, logger);
    logger.info({ deleted }, 'removed everything the ClusterNetwork owned');
  });

  // A safety net only: status follows cache events; this re-checks it from memory (no request
  // unless it changed).
  registry.on.timer(CN, { id: 'resync', interval: ctx.config.resyncSeconds }, async ({ meta }) => {
    ctx.status.request(meta.name);
  });

  registry.on.timer(
    CN,
    { id: 'reclaim-blocks', interval: ctx.config.reclaimIntervalSeconds },
    async ({ body, logger }) => {
      const cn = body as ClusterNetwork;
      if (!cn.spec) return;
      const pools = poolsOf(cn.spec).map((p) => p.name);
      const res = await reclaimOrphanBlocks(ctx.kube, {
        graceSeconds: ctx.config.reclaimGraceSeconds,
        pools,
        nodes: ctx.caches.nodes.list().map((n) => n.metadata.name),
        blocks: ctx.caches.blocks.list(),
        logger,
      });
      if (res.deleted.length || res.released.length || res.dropped)
        logger.info({ ...res }, 'reclaimed blocks of deleted nodes');
    },
  );

  const drift = driftHandler(ctx);
  for (const r of OWNED_KINDS) {
    registry.scope(r, ownedScope(r, ctx.config));
    registry.on.event(r, { id: `drift-${r.plural}` }, drift);
  }
  return registry;
}
