// Drift repair: when someone edits or deletes an object we render, put our version back. The watch
// on owned kinds calls this for every event; server-side apply with force restores every field we
// own, and an apply that changes nothing does not even bump the resourceVersion, so our own writes
// do not loop. Objects the ClusterNetwork no longer renders are the reconcile's to prune, not ours.
import { LAST_HANDLED_ANNOTATION, postEvent, type EventKwargs } from '../src/framework/index.ts';
import type { KubeObject } from '../src/kube/object.ts';
import { CLUSTER_NETWORK_LABEL } from '../src/render/index.ts';
import { findUnrealisable } from '../src/render/realisable.ts';
import type { OperatorContext } from './context.ts';
import { objectId, resourceFor } from './kinds.ts';
import { renderFor } from './reconcile.ts';

export function driftHandler(ctx: OperatorContext): (kwargs: EventKwargs) => Promise<void> {
  return async ({ type, body, logger }) => {
    const cnName = body.metadata.labels?.[CLUSTER_NETWORK_LABEL];
    if (!cnName) return;
    await ctx.lock.run(cnName, async () => {
      const cn = ctx.caches.clusterNetworks.get(cnName);
      // Not in our cache: gone, or another operator's (a different --selector shard). Going: cleanup
      // owns the objects now. Never handled yet: the create handler will apply.
      if (!cn || cn.metadata.deletionTimestamp || !cn.metadata.annotations?.[LAST_HANDLED_ANNOTATION]) return;
      // The echo of our own apply (same version as it returned): nothing drifted.
      if (type !== 'DELETED' && ctx.applied.get(objectId(body)) === body.metadata.resourceVersion) return;
      if (findUnrealisable(cn, ctx.caches.nodes.list(), { agentNamespace: ctx.config.namespace }).length)
        return;
      const want = renderFor(ctx, cn).find((o) => objectId(o) === objectId(body));
      if (!want) return;
      const applied = await ctx.kube.apply<KubeObject>(resourceFor(want), want, { force: true });
      if (applied.metadata.resourceVersion) ctx.applied.set(objectId(want), applied.metadata.resourceVersion);
      if (type !== 'DELETED' && applied.metadata.resourceVersion === body.metadata.resourceVersion) return;
      ctx.metrics.driftCorrected(body.kind);
      const what = `${body.kind} ${body.metadata.namespace ? `${body.metadata.namespace}/` : ''}${body.metadata.name}`;
      logger.info({ kind: body.kind, name: body.metadata.name, event: type }, 'drift corrected');
      await postEvent(
        ctx.kube,
        cn,
        {
          type: 'Normal',
          reason: 'DriftCorrected',
          message: `${what} was ${type === 'DELETED' ? 'deleted' : 'changed'} outside Trellis; re-applied the rendered version`,
        },
        logger,
      );
    });
  };
}
