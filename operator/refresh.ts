// Coalesced status refreshes outside the handler cycle: a burst of agent heartbeats or node events
// becomes one reconcile per ClusterNetwork per second. The reconcile re-applies (a no-op when nothing
// drifted) and writes status only when it changed.
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import { ClusterNetworkResource } from '../src/api/group.ts';
import { canonicalJson } from '../src/framework/essence.ts';
import { LAST_HANDLED_ANNOTATION } from '../src/framework/index.ts';
import type { OperatorContext } from './context.ts';
import { reconcileClusterNetwork } from './reconcile.ts';
import { parseSelector } from '../src/selector/index.ts';

export class StatusRefresher {
  private readonly ctx: OperatorContext;
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly delayMs: number;

  constructor(ctx: OperatorContext, delayMs = 1000) {
    this.ctx = ctx;
    this.delayMs = delayMs;
  }

  /** Refresh soon, unless `signal` (this leadership term) has ended by then. */
  request(cnName: string, signal: AbortSignal): void {
    if (this.pending.has(cnName)) return;
    const t = setTimeout(() => {
      this.pending.delete(cnName);
      if (signal.aborted) return;
      this.refresh(cnName).catch((err: unknown) =>
        this.ctx.logger.warn({ err, clusterNetwork: cnName }, 'status refresh failed'),
      );
    }, this.delayMs);
    t.unref();
    this.pending.set(cnName, t);
  }

  requestAll(signal: AbortSignal): void {
    this.ctx.kube
      .listAll<ClusterNetwork>(ClusterNetworkResource, undefined, {
        labelSelector: this.ctx.config.clusterNetworkSelector,
      })
      .then((list) => list.items.forEach((cn) => this.request(cn.metadata.name, signal)))
      .catch((err: unknown) =>
        this.ctx.logger.warn({ err }, 'could not list ClusterNetworks for a status refresh'),
      );
  }

  /** Whether this operator handles the ClusterNetwork (its --selector). */
  private mine(cn: ClusterNetwork): boolean {
    return parseSelector(this.ctx.config.clusterNetworkSelector ?? '').matches(cn.metadata.labels);
  }

  private async refresh(cnName: string): Promise<void> {
    const cn = await this.ctx.kube.getOrUndefined<ClusterNetwork>(ClusterNetworkResource, cnName);
    if (!cn || cn.metadata.deletionTimestamp || !cn.metadata.annotations?.[LAST_HANDLED_ANNOTATION]) return;
    if (!this.mine(cn)) return;
    const log = this.ctx.logger.child({ clusterNetwork: cnName, refresh: true });
    const res = await reconcileClusterNetwork(this.ctx, cn, log);
    if (canonicalJson(cn.status ?? {}) === canonicalJson(res.status)) return;
    await this.ctx.kube.mergePatch(
      ClusterNetworkResource,
      cnName,
      { status: res.status },
      undefined,
      'status',
    );
  }
}
