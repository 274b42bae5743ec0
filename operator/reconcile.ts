// Reconcile one ClusterNetwork, level-based: judge whether it can be realised, render it, apply
// every rendered object with server-side apply (field manager `trellis`, force), delete owned objects
// it no longer renders, and compute the status from what is true now. Idempotent: running it twice
// changes nothing the second time. Cleanup (on deletion) is the same prune with nothing rendered.
import type { ClusterNetwork, ClusterNetworkStatus, PoolUsage } from '../src/api/clusternetwork.ts';
import { summarizePoolUsage } from '../src/ipam/usage.ts';
import { isApiError } from '../src/kube/errors.ts';
import type { KubeObject } from '../src/kube/object.ts';
import { Builtin, type Resource } from '../src/kube/resource.ts';
import type { Logger } from '../src/log/logger.ts';
import { matchesSelector } from '../src/selector/index.ts';
import {
  CLUSTER_NETWORK_LABEL,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  renderClusterNetwork,
} from '../src/render/index.ts';
import { findUnrealisable, type Finding } from '../src/render/realisable.ts';
import { attachmentNodeFindings } from '../src/multinet/node-findings.ts';
import type { OperatorContext } from './context.ts';
import { ensureNadCrd } from './crds.ts';
import { BY_CLUSTER_NETWORK } from './cache.ts';
import { OWNED_KINDS, objectId, resourceFor } from './kinds.ts';
import type { ReconcileOutcome } from './status-writer.ts';
import { computeStatus } from './status.ts';
import { bgpSessionProblems } from './bgp-status.ts';

export function ownedSelector(cnName: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGED_BY},${CLUSTER_NETWORK_LABEL}=${cnName}`;
}

export function renderFor(ctx: OperatorContext, cn: ClusterNetwork): KubeObject[] {
  const objects = renderClusterNetwork(cn, { namespace: ctx.config.namespace, image: ctx.config.agentImage });
  // The render module labels everything; we insist, because pruning and cleanup find objects by these.
  // The owner reference shows in kubectl who made the object, and lets the garbage collector (where
  // one runs) remove leftovers even if our finalizer was stripped by hand.
  const owner = cn.metadata.uid
    ? [
        {
          apiVersion: cn.apiVersion,
          kind: cn.kind,
          name: cn.metadata.name,
          uid: cn.metadata.uid,
          controller: true,
        },
      ]
    : undefined;
  return objects.map((o) => ({
    ...o,
    metadata: {
      ...o.metadata,
      labels: {
        ...(o.metadata.labels ?? {}),
        [MANAGED_BY_LABEL]: MANAGED_BY,
        [CLUSTER_NETWORK_LABEL]: cn.metadata.name,
      },
      ...(owner ? { ownerReferences: owner } : {}),
    },
  }));
}

/**
 * Applies what the ClusterNetwork renders (when it can be realised on the cached nodes), prunes
 * what it no longer renders, and hands the outcome to the status writer, the one writer of
 * `.status`. Reads only from the operator's caches.
 */
export async function reconcileClusterNetwork(
  ctx: OperatorContext,
  cn: ClusterNetwork,
  log: Logger,
): Promise<ReconcileOutcome> {
  return ctx.lock.run(cn.metadata.name, async () => {
    const nodes = ctx.caches.nodes.list();
    const outcome: ReconcileOutcome = {
      findings: findUnrealisable(cn, nodes, { agentNamespace: ctx.config.namespace }),
    };
    let rendered: KubeObject[] | undefined;
    if (!outcome.findings.length) {
      try {
        rendered = renderFor(ctx, cn);
      } catch (err: unknown) {
        outcome.renderError = messageOf(err);
        outcome.findings = renderFindings(outcome.renderError);
      }
    }
    if (rendered) {
      try {
        await applyAll(ctx, rendered, log);
        await prune(ctx, cn.metadata.name, rendered, log);
      } catch (err: unknown) {
        outcome.applyError = messageOf(err);
        log.warn({ err }, 'applying the rendered objects failed');
      }
    } else {
      log.warn(
        { findings: outcome.findings },
        'ClusterNetwork cannot be realised; leaving existing objects as they are',
      );
    }
    // After the render decision: an attachment that cannot run on some node must not hold back the
    // rest; statusFromCaches reports the same findings, so the status writer agrees with us.
    outcome.findings = [...outcome.findings, ...attachmentNodeFindings(cn, ctx.caches.statuses.list())];
    const { desired, ready } = readiness(ctx, cn);
    ctx.metrics.reconciled(
      outcome.findings.length
        ? 'unrealisable'
        : outcome.applyError
          ? 'apply-failed'
          : ready >= desired
            ? 'ready'
            : 'progressing',
    );
    ctx.status.recorded(cn.metadata.name, outcome);
    return outcome;
  });
}

function renderFindings(message: string): Finding[] {
  return [{ field: 'spec', message: `cannot render the agent objects: ${message}` }];
}

/** The status the caches and the last reconcile's outcome imply (pure but for reading caches). */
export function statusFromCaches(
  ctx: OperatorContext,
  cn: ClusterNetwork,
  outcome: ReconcileOutcome,
): { status: ClusterNetworkStatus; findings: Finding[] } {
  const findings = [
    ...(outcome.renderError
      ? renderFindings(outcome.renderError)
      : findUnrealisable(cn, ctx.caches.nodes.list(), { agentNamespace: ctx.config.namespace })),
    // Attachments that cannot run on a node (master missing, kernel lacks ipvlan/vlan), as its
    // agent reports: Degraded, naming node and field; the rest is still rendered and applied.
    ...attachmentNodeFindings(cn, ctx.caches.statuses.list()),
  ];
  const { desired, ready, desiredNodes } = readiness(ctx, cn);
  const bgpProblems =
    cn.spec?.backend?.mode === 'bgp'
      ? bgpSessionProblems(cn.metadata.name, desiredNodes, ctx.caches.statuses.list())
      : [];
  const status = computeStatus({
    cn,
    findings,
    applyError: outcome.applyError,
    bgpProblems,
    desired,
    ready,
    pools: poolUsage(ctx, cn),
    now: new Date(),
  });
  return { status, findings };
}

/** Nodes the agent DaemonSet selects, and how many of them report ready for this ClusterNetwork. */
function readiness(
  ctx: OperatorContext,
  cn: ClusterNetwork,
): { desired: number; ready: number; desiredNodes: Set<string> } {
  const ds = ctx.caches.owned
    .get(Builtin.DaemonSet)!
    .byIndex(BY_CLUSTER_NETWORK, cn.metadata.name)
    .find((o) => !o.metadata.deletionTimestamp);
  const selector = daemonSetNodeSelector(ds) ?? {
    'kubernetes.io/os': 'linux',
    ...(cn.spec?.agent?.nodeSelector ?? {}),
  };
  const desiredNodes = new Set(
    ctx.caches.nodes
      .list()
      .filter((n) => matchesSelector({ matchLabels: selector }, n.metadata.labels, 'everything'))
      .map((n) => n.metadata.name),
  );
  const ready = ctx.caches.statuses
    .list()
    .filter(
      (s) =>
        s.status?.clusterNetwork === cn.metadata.name && s.status.ready && desiredNodes.has(s.metadata.name),
    ).length;
  return { desired: desiredNodes.size, ready, desiredNodes };
}

/** Deletes everything the ClusterNetwork owns; throws while something is left (so the handler retries). */
export async function cleanupClusterNetwork(
  ctx: OperatorContext,
  cnName: string,
  log: Logger,
): Promise<number> {
  return ctx.lock.run(cnName, async () => {
    const deleted = await prune(ctx, cnName, [], log);
    // The caches show the deletions a moment later; what we just deleted is not "left".
    const left = listOwned(ctx, cnName, log).filter((o) => !deleted.has(objectId(o)));
    if (left.length) throw new Error(`still present after cleanup: ${left.map(objectId).join(', ')}`);
    return deleted.size;
  });
}

async function applyAll(ctx: OperatorContext, objects: KubeObject[], log: Logger): Promise<void> {
  await ensureNamespace(ctx);
  for (const obj of objects) {
    const r = resourceFor(obj);
    let applied: KubeObject;
    try {
      applied = await ctx.kube.apply<KubeObject>(r, obj, { force: true });
    } catch (err: unknown) {
      // The NAD CRD can vanish after start-up (someone uninstalled Multus): put ours back once.
      if (!(isApiError(err, 404) && r === Builtin.NetworkAttachmentDefinition)) throw err;
      await ensureNadCrd(ctx.kube, log);
      applied = await ctx.kube.apply<KubeObject>(r, obj, { force: true });
    }
    if (applied.metadata.resourceVersion) ctx.applied.set(objectId(obj), applied.metadata.resourceVersion);
    ctx.metrics.applied(obj.kind);
  }
  log.debug({ count: objects.length }, 'applied rendered objects');
}

async function ensureNamespace(ctx: OperatorContext): Promise<void> {
  const ns = ctx.config.namespace;
  if (await ctx.kube.getOrUndefined(Builtin.Namespace, ns)) return;
  await ctx.kube.apply(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
}

/** The objects the ClusterNetwork owns, from the caches (a kind not served yet has none to prune). */
function listOwned(ctx: OperatorContext, cnName: string, log: Logger): KubeObject[] {
  const out: KubeObject[] = [];
  for (const [r, inf] of ctx.caches.owned) {
    if (!inf.hasSynced()) {
      log.debug({ kind: r.kind }, 'cache of an owned kind not synced (kind not served?): not pruning it');
      continue;
    }
    for (const item of inf.byIndex(BY_CLUSTER_NETWORK, cnName))
      if (!item.metadata.deletionTimestamp) out.push({ ...item, kind: r.kind });
  }
  return out;
}

/** Deletes owned objects that are not in `keep` (or already gone); returns their ids. */
async function prune(
  ctx: OperatorContext,
  cnName: string,
  keep: KubeObject[],
  log: Logger,
): Promise<Set<string>> {
  const wanted = new Set(keep.map(objectId));
  const deleted = new Set<string>();
  for (const obj of listOwned(ctx, cnName, log)) {
    if (wanted.has(objectId(obj))) continue;
    const r: Resource = OWNED_KINDS.find((k) => k.kind === obj.kind) as Resource;
    const gone = await ctx.kube.delete(r, obj.metadata.name, obj.metadata.namespace, {
      propagationPolicy: 'Background',
    });
    deleted.add(objectId(obj));
    if (gone) {
      ctx.metrics.pruned(obj.kind);
      log.info(
        { kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace },
        'deleted an object no longer rendered',
      );
    }
  }
  return deleted;
}

function daemonSetNodeSelector(ds: KubeObject | undefined): Record<string, string> | undefined {
  const spec = ds?.spec as { template?: { spec?: { nodeSelector?: Record<string, string> } } } | undefined;
  return spec?.template?.spec?.nodeSelector;
}

function poolUsage(ctx: OperatorContext, cn: ClusterNetwork): PoolUsage[] {
  try {
    return summarizePoolUsage(cn, ctx.caches.blocks.list());
  } catch (err: unknown) {
    ctx.logger.warn({ err, clusterNetwork: cn.metadata.name }, 'could not summarise pool usage');
    return [];
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
