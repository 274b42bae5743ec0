// The operator's handlers, registered on a framework Registry. ClusterNetwork: reconcile on create,
// on spec updates and on resume (an operator restart re-applies, catching drift while it was down);
// a periodic resync that re-reconciles and refreshes status; clean up on delete; reclaim blocks of
// deleted nodes. Owned kinds: drift repair. Nodes and NodeNetworkStatuses: refresh readiness counts.
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import { ClusterNetworkResource, NodeNetworkStatusResource } from '../src/api/group.ts';
import { canonicalJson } from '../src/framework/essence.ts';
import { LAST_HANDLED_ANNOTATION, Registry, postEvent, type HandlerFn } from '../src/framework/index.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
import { reclaimOrphanBlocks } from '../src/ipam/reclaim.ts';
import { poolsOf } from '../src/ipam/pools.ts';
import { Builtin } from '../src/kube/resource.ts';
import { MANAGED_BY, MANAGED_BY_LABEL } from '../src/render/index.ts';
import type { OperatorContext } from './context.ts';
import { driftHandler } from './drift.ts';
import { OWNED_KINDS } from './kinds.ts';
import { cleanupClusterNetwork, reconcileClusterNetwork } from './reconcile.ts';
import { StatusRefresher } from './refresh.ts';

export function buildRegistry(ctx: OperatorContext): Registry {
  const registry = new Registry();
  const CN = ClusterNetworkResource;
  if (ctx.config.clusterNetworkSelector)
    registry.scope(CN, { labelSelector: ctx.config.clusterNetworkSelector });

  const reconcile: HandlerFn = async ({ body, patch, logger }) => {
    const res = await reconcileClusterNetwork(ctx, body as ClusterNetwork, logger);
    Object.assign(patch.status, res.status);
    if (res.findings.length) {
      // Not an error to retry (nothing changes until the spec or the nodes do), but worth telling.
      const message = res.findings.map((f) => `${f.field}: ${f.message}`).join('; ');
      await postEvent(ctx.kube, body, { type: 'Warning', reason: 'Unrealisable', message }, logger);
    }
    if (res.applyError) throw new Error(res.applyError);
    return res.status;
  };
  const policy = { backoff: 2, backoffCap: 60 };
  registry.on.create(CN, { id: 'render', ...policy }, reconcile);
  registry.on.update(CN, { id: 'rerender', field: 'spec', ...policy }, reconcile);
  registry.on.resume(CN, { id: 'resume', ...policy }, reconcile);

  registry.on.delete(CN, { id: 'cleanup', ...policy }, async ({ meta, logger }) => {
    const deleted = await cleanupClusterNetwork(ctx, meta.name, logger);
    logger.info({ deleted }, 'removed everything the ClusterNetwork owned');
  });

  registry.on.timer(
    CN,
    { id: 'resync', interval: ctx.config.resyncSeconds },
    async ({ body, patch, logger }) => {
      const cn = body as ClusterNetwork;
      if (!cn.metadata.annotations?.[LAST_HANDLED_ANNOTATION]) return; // the create cycle is still running
      const res = await reconcileClusterNetwork(ctx, cn, logger);
      if (canonicalJson(cn.status ?? {}) !== canonicalJson(res.status))
        Object.assign(patch.status, res.status);
      if (res.applyError) throw new Error(res.applyError);
    },
  );

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
        logger,
      });
      if (res.deleted.length || res.released.length || res.dropped)
        logger.info({ ...res }, 'reclaimed blocks of deleted nodes');
    },
  );

  const drift = driftHandler(ctx);
  const managed = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;
  for (const r of OWNED_KINDS) {
    const namespaced = r === Builtin.ConfigMap || r === Builtin.DaemonSet || r === Builtin.ServiceAccount;
    registry.scope(r, { labelSelector: managed, ...(namespaced ? { namespace: ctx.config.namespace } : {}) });
    registry.on.event(r, { id: `drift-${r.plural}` }, drift);
  }

  // Readiness counts change when agents report or nodes come and go: refresh status soon after.
  const refresher = new StatusRefresher(ctx);
  registry.on.event(NodeNetworkStatusResource, { id: 'node-status' }, async ({ body, signal }) => {
    const cnName = (body as NodeNetworkStatus).status?.clusterNetwork;
    if (cnName) refresher.request(cnName, signal);
  });
  registry.on.event(Builtin.Node, { id: 'nodes' }, async ({ type, signal }) => {
    // Label changes on existing nodes are picked up by the resync timer; heartbeats are not our business.
    if (type === 'MODIFIED') return;
    refresher.requestAll(signal);
  });
  return registry;
}
