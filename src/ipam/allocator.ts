// The node's IPAM facade: what the agent calls (allocate, release, lookup, GC, orphan release),
// resolving which pools a request means and keeping ADD all-or-nothing. Every fact lives in IPBlock
// objects; the pieces below it are the block store (cache + batched, conflict-checked writer,
// block-store.ts) and the allocation strategy (claim / borrow / static, strategy.ts).
//
// Why a killed agent can never give one address to two pods: each change is a PUT carrying the
// resourceVersion we read (409 -> re-read and retry) or a create of a deterministically named
// block (409 -> someone else owns it). So an agent killed at any instant can leave at most an
// allocation nobody journaled (collected by GC), never an address handed to two holders. Writes
// to one block are serialised in-process, so the node never conflicts with itself; nodes allocate
// in their own blocks, so they do not contend with each other until a pool runs short and borrow.
import type { ClusterNetwork, ClusterNetworkSpec } from '../api/clusternetwork.ts';
import { ClusterNetworkResource } from '../api/group.ts';
import type { Allocation, IPBlock } from '../api/ipam.ts';
import type { KubeClient } from '../kube/client.ts';
import { Builtin } from '../kube/resource.ts';
import type { Logger } from '../log/logger.ts';
import { allocatingNode, heldBy, olderThan, orphanOf } from './block.ts';
import { BlockStore, whenNotBusy } from './block-store.ts';
import { IpamError, StaticIPNotAllowedError, UnknownPoolError } from './errors.ts';
import { postAllocationFailedEvent } from './events.ts';
import { ipamMetrics } from './metrics.ts';
import {
  ATTACHMENT_POOL_PREFIX,
  defaultPools,
  poolAllowed,
  poolsOf,
  staticAllowed,
  type PoolDef,
} from './pools.ts';
import { AllocationStrategy, assignStatics, toAllocated } from './strategy.ts';
import type { AllocatedIP, AllocationRequest, AttachmentRef, LivePod, ReconcilingNodeIpam } from './types.ts';

export { assignStatics } from './strategy.ts';

export interface NodeIpamOptions {
  kube: KubeClient;
  /** This node's name: blocks claimed get its affinity, allocations record it. */
  node: string;
  /** Name of the ClusterNetwork whose pools to use. */
  clusterNetwork: string;
  logger?: Logger;
  /** Pools to use instead of reading the ClusterNetwork (benchmarks, tests without an operator). */
  spec?: Pick<ClusterNetworkSpec, 'pools' | 'attachments'>;
  /** Node labels for pool nodeSelectors; read from the Node object when not given. */
  nodeLabels?: Record<string, string>;
  /** Post an IPAllocationFailed Event on the Pod when allocation fails. @default true */
  events?: boolean;
  /** How long the ClusterNetwork and Node labels are cached. @default 5000 */
  cacheMs?: number;
  /**
   * The caller's watch caches of the ClusterNetwork and this Node (the agent's informers): read
   * instead of GETs on ADD's path. undefined from either means "not known yet" and falls back to a
   * GET. A refusal (unknown pool, no pool for the node, static IP not allowed) is always decided on
   * a fresh GET, so a cache a moment behind never refuses a valid request.
   */
  cached?: {
    clusterNetwork(): Pick<ClusterNetworkSpec, 'pools' | 'attachments'> | undefined;
    nodeLabels(): Record<string, string> | undefined;
  };
}

const DEFAULT_GC_GRACE_MS = 30_000;

export class BlockAllocator implements ReconcilingNodeIpam {
  private readonly kube: KubeClient;
  private readonly node: string;
  private readonly cnName: string;
  private readonly log: Logger | undefined;
  private readonly opts: NodeIpamOptions;
  private readonly store: BlockStore;
  private readonly strategy: AllocationStrategy;
  private poolCache?: { at: number; pools: PoolDef[] };
  private labelCache?: { at: number; labels: Record<string, string> };
  private watchedPools?: { spec: object; pools: PoolDef[] };

  constructor(opts: NodeIpamOptions) {
    this.opts = opts;
    this.kube = opts.kube;
    this.node = opts.node;
    this.cnName = opts.clusterNetwork;
    this.log = opts.logger;
    this.store = new BlockStore(opts.kube);
    this.strategy = new AllocationStrategy({
      store: this.store,
      node: opts.node,
      owner: opts.spec ? undefined : opts.clusterNetwork,
      logger: opts.logger,
    });
  }

  async allocate(req: AllocationRequest): Promise<AllocatedIP[]> {
    const stop = ipamMetrics.latency.startTimer();
    try {
      const out = await this.allocateAll(req);
      stop();
      return out;
    } catch (err: unknown) {
      if (err instanceof IpamError && this.opts.events !== false) {
        await postAllocationFailedEvent(
          this.kube,
          { namespace: req.namespace, name: req.pod },
          this.node,
          err.message,
          this.log,
        );
      }
      throw err;
    }
  }

  private async allocateAll(req: AllocationRequest): Promise<AllocatedIP[]> {
    let pools: PoolDef[];
    let statics: Map<string, string>;
    try {
      ({ pools, statics } = await this.admitted(req, false));
    } catch (err: unknown) {
      // refused on the watch cache's view: decide again on a fresh read
      if (!(err instanceof IpamError) || !this.opts.cached) throw err;
      ({ pools, statics } = await this.admitted(req, true));
    }
    await Promise.all(pools.map((p) => this.store.ensureLoaded(p)));
    const ref: AttachmentRef = { containerID: req.containerID, interface: req.interface };
    const now = new Date().toISOString();
    const record: Allocation = {
      namespace: req.namespace,
      pod: req.pod,
      ...(req.podUID ? { podUID: req.podUID } : {}),
      containerID: req.containerID,
      interface: req.interface,
      allocatedAt: now,
      node: this.node,
      ...(req.network ? { network: req.network } : {}),
    };
    // Pools are independent objects: allocate from them at once (dual-stack costs one round trip).
    const outcomes = await Promise.allSettled(
      pools.map(async (pool) => {
        // Idempotent ADD: an attachment that already holds an address of this pool keeps it.
        const held = await this.heldInPool(pool, ref);
        if (held.length > 0) return { got: held[0]!, fresh: false };
        const staticIP = statics.get(pool.name);
        const got = staticIP
          ? await this.strategy.allocateStatic(pool, staticIP, { ...record, static: true })
          : await this.strategy.allocateDynamic(pool, record);
        ipamMetrics.allocations.inc({ pool: pool.name });
        return { got, fresh: true };
      }),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) {
      // All or nothing: give back what this call took before failing.
      for (const [i, o] of outcomes.entries()) {
        if (o.status === 'fulfilled' && o.value.fresh)
          await this.releaseInPool(pools[i]!, ref).catch(() => 0);
      }
      throw failed.reason;
    }
    const results = outcomes.map((o) => (o as PromiseFulfilledResult<{ got: AllocatedIP }>).value.got);
    this.log?.debug({ pod: `${req.namespace}/${req.pod}`, ips: results.map((r) => r.ip) }, 'allocated');
    return results;
  }

  async release(ref: AttachmentRef): Promise<number> {
    let pools: PoolDef[];
    try {
      pools = await this.knownPools();
    } catch (err: unknown) {
      if (!(err instanceof IpamError)) throw err;
      // DEL must work even when the ClusterNetwork is gone: look through every block instead.
      return this.releaseAnywhere(ref);
    }
    let n = 0;
    for (const pool of pools) n += await this.releaseInPool(pool, ref);
    if (n > 0)
      this.log?.debug({ containerID: ref.containerID, interface: ref.interface, released: n }, 'released');
    return n;
  }

  private async releaseAnywhere(ref: AttachmentRef): Promise<number> {
    let n = 0;
    for (const b of await this.store.listEverything()) {
      if (!b.spec || heldBy(b.spec, ref).length === 0) continue;
      const pool = { name: b.spec.pool };
      this.store.remember(pool, b);
      n +=
        (await this.store.mutate(pool, b.metadata.name, (c) => {
          const ips = heldBy(c.spec!, ref);
          for (const ip of ips) delete c.spec!.allocations[ip];
          return { changed: ips.length > 0, result: ips.length };
        })) ?? 0;
    }
    return n;
  }

  async lookup(ref: AttachmentRef): Promise<AllocatedIP[]> {
    const out: AllocatedIP[] = [];
    for (const pool of await this.knownPools()) out.push(...(await this.heldInPool(pool, ref)));
    return out;
  }

  async gc(
    valid: AttachmentRef[],
    graceMs = DEFAULT_GC_GRACE_MS,
    inPool: (pool: string) => boolean = () => true,
    network?: string,
  ): Promise<number> {
    const keep = new Set(valid.map((v) => `${v.containerID}\u0000${v.interface}`));
    const judged = (a: Allocation) => network === undefined || a.network === network;
    return this.sweep(
      graceMs,
      (a) => judged(a) && !keep.has(`${a.containerID}\u0000${a.interface}`),
      network ? `gc of network ${network}` : 'gc',
      inPool,
    );
  }

  async releaseOrphans(livePods: LivePod[], graceMs = DEFAULT_GC_GRACE_MS): Promise<number> {
    const orphan = orphanOf(livePods);
    return this.sweep(graceMs, orphan, 'orphan reconciliation');
  }

  /** The request's pools and static IPs, or the refusal (IpamError) a user must act on. */
  private async admitted(
    req: AllocationRequest,
    fresh: boolean,
  ): Promise<{ pools: PoolDef[]; statics: Map<string, string> }> {
    const pools = await this.requestedPools(req, fresh);
    const statics = assignStatics(pools, req.staticIPs ?? []);
    for (const [name, ip] of statics) {
      const pool = pools.find((p) => p.name === name)!;
      if (!staticAllowed(pool, req.namespace))
        throw new StaticIPNotAllowedError(ip, req.namespace, name, pool.policyField);
    }
    return { pools, statics };
  }

  // ---- pools -------------------------------------------------------------------------------

  private async knownPools(): Promise<PoolDef[]> {
    const pools = await this.pools();
    await Promise.all(pools.map((p) => this.store.ensureLoaded(p)));
    return pools;
  }

  private async pools(fresh = false): Promise<PoolDef[]> {
    if (this.opts.spec) return (this.poolCache ??= { at: 0, pools: poolsOf(this.opts.spec) }).pools;
    const watched = fresh ? undefined : this.opts.cached?.clusterNetwork();
    if (watched) {
      // the spec object changes identity only when the watch delivers a new version
      if (this.watchedPools?.spec !== watched) this.watchedPools = { spec: watched, pools: poolsOf(watched) };
      return this.watchedPools.pools;
    }
    const ttl = this.opts.cacheMs ?? 5000;
    if (!fresh && this.poolCache && Date.now() - this.poolCache.at < ttl) return this.poolCache.pools;
    const cn = await whenNotBusy(() =>
      this.kube.getOrUndefined<ClusterNetwork>(ClusterNetworkResource, this.cnName),
    );
    if (!cn?.spec)
      throw new IpamError(`ClusterNetwork ${this.cnName} not found: IPAM has no pools to allocate from`, 11);
    this.poolCache = { at: Date.now(), pools: poolsOf(cn.spec) };
    return this.poolCache.pools;
  }

  private async nodeLabels(fresh = false): Promise<Record<string, string>> {
    if (this.opts.nodeLabels) return this.opts.nodeLabels;
    const watched = fresh ? undefined : this.opts.cached?.nodeLabels();
    if (watched) return watched;
    const ttl = this.opts.cacheMs ?? 5000;
    if (!fresh && this.labelCache && Date.now() - this.labelCache.at < ttl) return this.labelCache.labels;
    const node = await this.kube.getOrUndefined(Builtin.Node, this.node);
    this.labelCache = { at: Date.now(), labels: node?.metadata.labels ?? {} };
    return this.labelCache.labels;
  }

  private async requestedPools(req: AllocationRequest, fresh = false): Promise<PoolDef[]> {
    const all = await this.pools(fresh);
    if (req.pools && req.pools.length > 0) {
      return req.pools.map((name) => {
        const p = all.find((x) => x.name === name);
        if (!p) {
          throw new UnknownPoolError(
            `pool ${name} is not in ClusterNetwork ${this.cnName} (pools: ${all.map((x) => x.name).join(', ') || 'none'})`,
          );
        }
        // a NAD is tenant-written and may name any pool: only the namespaces the pool lists draw from it
        if (!poolAllowed(p, req.namespace)) {
          const att = name.slice(ATTACHMENT_POOL_PREFIX.length);
          throw new UnknownPoolError(
            `pool ${name} of ClusterNetwork ${this.cnName} is not open to pods of namespace ${req.namespace}; ` +
              `add it to spec.attachments[name=${att}].pool.namespaces, or use a network of that namespace`,
          );
        }
        return p;
      });
    }
    const chosen = defaultPools(all, await this.nodeLabels(fresh));
    if (chosen.length === 0) {
      throw new UnknownPoolError(
        `no pod pool of ClusterNetwork ${this.cnName} selects node ${this.node}: check the pools' nodeSelector`,
      );
    }
    return chosen;
  }

  private async heldInPool(pool: PoolDef, ref: AttachmentRef): Promise<AllocatedIP[]> {
    const out: AllocatedIP[] = [];
    for (const b of await this.store.materialize(pool)) {
      for (const ip of heldBy(b.spec!, ref)) out.push(toAllocated(pool, b.spec!.cidr, ip));
    }
    return out;
  }

  private async releaseInPool(pool: PoolDef, ref: AttachmentRef): Promise<number> {
    let n = 0;
    for (const b of await this.store.materialize(pool)) {
      if (heldBy(b.spec!, ref).length === 0) continue;
      const removed =
        (await this.store.mutate(pool, b.metadata.name, (c) => {
          const ips = heldBy(c.spec!, ref);
          for (const ip of ips) delete c.spec!.allocations[ip];
          return { changed: ips.length > 0, result: ips.length };
        })) ?? 0;
      if (removed > 0) ipamMetrics.releases.inc({ pool: pool.name }, removed);
      n += removed;
    }
    return n;
  }

  /** Releases this node's allocations older than the grace period that `stale` selects. */
  private async sweep(
    graceMs: number,
    stale: (a: Allocation) => boolean,
    why: string,
    inPool: (pool: string) => boolean = () => true,
  ): Promise<number> {
    const pools = (await this.pools()).filter((p) => inPool(p.name));
    let n = 0;
    for (const pool of pools) {
      await this.store.reload(pool); // a sweep decides from the API's view, not the cache's
      for (const b of [...this.store.poolMap(pool).values()]) {
        if (!b) continue;
        const pick = (spec: IPBlock['spec']): string[] => {
          const now = Date.now();
          return Object.entries(spec!.allocations ?? {})
            .filter(
              ([, a]) => allocatingNode(spec!, a) === this.node && olderThan(a, graceMs, now) && stale(a),
            )
            .map(([ip]) => ip);
        };
        if (pick(b.spec).length === 0) continue;
        const removed =
          (await this.store.mutate(pool, b.metadata.name, (c) => {
            const ips = pick(c.spec);
            for (const ip of ips) delete c.spec!.allocations[ip];
            return { changed: ips.length > 0, result: ips.length };
          })) ?? 0;
        if (removed > 0) {
          ipamMetrics.releases.inc({ pool: pool.name }, removed);
          this.log?.info(
            { pool: pool.name, block: b.metadata.name, released: removed },
            `released stale addresses (${why})`,
          );
        }
        n += removed;
      }
    }
    return n;
  }
}
