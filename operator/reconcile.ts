// Reconcile one ClusterNetwork, level-based: judge whether it can be realised, render it, apply
// every rendered object with server-side apply (field manager `trellis`, force), delete owned objects
// it no longer renders, and compute the status from what is true now. Idempotent: running it twice
// changes nothing the second time. Cleanup (on deletion) is the same prune with nothing rendered.
import type { ClusterNetwork, ClusterNetworkStatus, PoolUsage } from '../src/api/clusternetwork.ts';
import { IPBlockResource, NodeNetworkStatusResource } from '../src/api/group.ts';
import type { IPBlock } from '../src/api/ipam.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
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
import type { OperatorContext } from './context.ts';
import { ensureNadCrd } from './crds.ts';
import { OWNED_KINDS, objectId, resourceFor } from './kinds.ts';
import { computeStatus } from './status.ts';
import { listBgpSessionProblems } from './bgp-status.ts';

export interface ReconcileResult {
  status: ClusterNetworkStatus;
  /** Set when applying failed; the caller retries. */
  applyError?: string;
  findings: Finding[];
}

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

export async function reconcileClusterNetwork(
  ctx: OperatorContext,
  cn: ClusterNetwork,
  log: Logger,
): Promise<ReconcileResult> {
  return ctx.lock.run(cn.metadata.name, async () => {
    const nodes = (await ctx.kube.listAll<KubeObject>(Builtin.Node)).items;
    let findings = findUnrealisable(cn, nodes);
    let rendered: KubeObject[] | undefined;
    if (!findings.length) {
      try {
        rendered = renderFor(ctx, cn);
      } catch (err: unknown) {
        findings = [{ field: 'spec', message: `cannot render the agent objects: ${messageOf(err)}` }];
      }
    }
    let applyError: string | undefined;
    if (rendered) {
      try {
        await applyAll(ctx, rendered, log);
        await prune(ctx, cn.metadata.name, rendered, log);
      } catch (err: unknown) {
        applyError = messageOf(err);
        log.warn({ err }, 'applying the rendered objects failed');
      }
    } else {
      log.warn({ findings }, 'ClusterNetwork cannot be realised; leaving existing objects as they are');
    }
    const daemonSet = rendered?.find((o) => o.kind === 'DaemonSet');
    const selector = daemonSetNodeSelector(daemonSet) ?? {
      'kubernetes.io/os': 'linux',
      ...(cn.spec?.agent?.nodeSelector ?? {}),
    };
    const desiredNodes = new Set(
      nodes
        .filter((n) => matchesSelector({ matchLabels: selector }, n.metadata.labels, 'everything'))
        .map((n) => n.metadata.name),
    );
    const ready = await countReady(ctx, cn.metadata.name, desiredNodes);
    const pools = await poolUsage(ctx, cn, log);
    const bgpProblems =
      cn.spec?.backend?.mode === 'bgp'
        ? await listBgpSessionProblems(ctx.kube, cn.metadata.name, desiredNodes)
        : [];
    const status = computeStatus({
      cn,
      findings,
      applyError,
      bgpProblems,
      desired: desiredNodes.size,
      ready,
      pools,
      now: new Date(),
    });
    ctx.metrics.reconciled(
      findings.length
        ? 'unrealisable'
        : applyError
          ? 'apply-failed'
          : ready >= desiredNodes.size
            ? 'ready'
            : 'progressing',
    );
    return { status, applyError, findings };
  });
}

/** Deletes everything the ClusterNetwork owns; throws while something is left (so the handler retries). */
export async function cleanupClusterNetwork(
  ctx: OperatorContext,
  cnName: string,
  log: Logger,
): Promise<number> {
  return ctx.lock.run(cnName, async () => {
    const deleted = await prune(ctx, cnName, [], log);
    const left = await listOwned(ctx, cnName);
    if (left.length) throw new Error(`still present after cleanup: ${left.map(objectId).join(', ')}`);
    return deleted;
  });
}

async function applyAll(ctx: OperatorContext, objects: KubeObject[], log: Logger): Promise<void> {
  await ensureNamespace(ctx);
  for (const obj of objects) {
    const r = resourceFor(obj);
    try {
      await ctx.kube.apply(r, obj, { force: true });
    } catch (err: unknown) {
      // The NAD CRD can vanish after start-up (someone uninstalled Multus): put ours back once.
      if (!(isApiError(err, 404) && r === Builtin.NetworkAttachmentDefinition)) throw err;
      await ensureNadCrd(ctx.kube, log);
      await ctx.kube.apply(r, obj, { force: true });
    }
    ctx.metrics.applied(obj.kind);
  }
  log.debug({ count: objects.length }, 'applied rendered objects');
}

async function ensureNamespace(ctx: OperatorContext): Promise<void> {
  const ns = ctx.config.namespace;
  if (await ctx.kube.getOrUndefined(Builtin.Namespace, ns)) return;
  await ctx.kube.apply(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
}

async function listOwned(ctx: OperatorContext, cnName: string): Promise<KubeObject[]> {
  const out: KubeObject[] = [];
  for (const r of OWNED_KINDS) {
    try {
      // NADs live in the attachments' namespaces; everything else namespaced in ours (a Role grants it)
      const ns = r.namespaced && r !== Builtin.NetworkAttachmentDefinition ? ctx.config.namespace : undefined;
      const list = await ctx.kube.listAll<KubeObject>(r, ns, { labelSelector: ownedSelector(cnName) });
      for (const item of list.items)
        if (!item.metadata.deletionTimestamp) out.push({ ...item, kind: r.kind });
    } catch (err: unknown) {
      if (!isApiError(err, 404)) throw err; // kind not served (NAD CRD absent): nothing of it to own
    }
  }
  return out;
}

/** Deletes owned objects that are not in `keep`; returns how many it deleted. */
async function prune(ctx: OperatorContext, cnName: string, keep: KubeObject[], log: Logger): Promise<number> {
  const wanted = new Set(keep.map(objectId));
  let deleted = 0;
  for (const obj of await listOwned(ctx, cnName)) {
    if (wanted.has(objectId(obj))) continue;
    const r: Resource = OWNED_KINDS.find((k) => k.kind === obj.kind) as Resource;
    if (
      await ctx.kube.delete(r, obj.metadata.name, obj.metadata.namespace, { propagationPolicy: 'Background' })
    ) {
      deleted += 1;
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

async function countReady(ctx: OperatorContext, cnName: string, desired: Set<string>): Promise<number> {
  try {
    const list = await ctx.kube.listAll<NodeNetworkStatus>(NodeNetworkStatusResource);
    return list.items.filter(
      (s) => s.status?.clusterNetwork === cnName && s.status.ready && desired.has(s.metadata.name),
    ).length;
  } catch (err: unknown) {
    if (isApiError(err, 404)) return 0; // NodeNetworkStatus CRD not installed: no agent can have reported
    throw err;
  }
}

async function poolUsage(ctx: OperatorContext, cn: ClusterNetwork, log: Logger): Promise<PoolUsage[]> {
  let blocks: IPBlock[] = [];
  try {
    blocks = (await ctx.kube.listAll<IPBlock>(IPBlockResource)).items;
  } catch (err: unknown) {
    if (!isApiError(err, 404)) throw err;
  }
  try {
    return summarizePoolUsage(cn, blocks);
  } catch (err: unknown) {
    log.warn({ err }, 'could not summarise pool usage');
    return [];
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
