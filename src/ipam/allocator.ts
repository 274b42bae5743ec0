// The node's allocator. Every fact lives in IPBlock objects; memory only caches them to save reads.
// Correctness comes from the API server: each change is a PUT carrying the resourceVersion we read
// (409 -> re-read and retry) or a create of a deterministically named block (409 -> someone else
// owns it). So an agent killed at any instant can leave at most an allocation nobody journaled
// (collected by GC), never an address handed to two holders. Writes to one block are serialised
// in-process, so the node never conflicts with itself; nodes allocate in their own blocks, so
// they do not contend with each other until a pool runs short and they borrow.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterNetwork, ClusterNetworkSpec } from '../api/clusternetwork.ts';
import { ClusterNetworkResource, IPBlockResource } from '../api/group.ts';
import { BLOCK_NODE_LABEL, BLOCK_POOL_LABEL, type Allocation, type IPBlock } from '../api/ipam.ts';
import type { KubeClient } from '../kube/client.ts';
import { isApiError } from '../kube/errors.ts';
import { Builtin } from '../kube/resource.ts';
import type { Logger } from '../log/logger.ts';
import {
  allocatingNode,
  blockName,
  canonical,
  firstFree,
  heldBy,
  isHolder,
  newBlock,
  olderThan,
  poolKey,
} from './block.ts';
import { blockAt, blockCount, blockIndexOf, formatCidr, parseCidr, parseIP } from './cidr.ts';
import {
  IpamError,
  PoolExhaustedError,
  StaticIPConflictError,
  StaticIPOutOfPoolError,
  UnknownPoolError,
} from './errors.ts';
import { postAllocationFailedEvent } from './events.ts';
import { ipamMetrics } from './metrics.ts';
import { KeyedMutex } from '../util/keyed-mutex.ts';
import { defaultPools, isStaticUsable, poolsOf, type PoolDef } from './pools.ts';
import type { AllocatedIP, AllocationRequest, AttachmentRef, LivePod, ReconcilingNodeIpam } from './types.ts';

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
}

interface PendingChange {
  change: (block: IPBlock) => { changed: boolean; result: unknown };
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Placeholder for a block known to exist (a create answered 409) but not read yet. */
type CachedBlock = IPBlock | null;

const MAX_WRITE_ATTEMPTS = 30;
const DEFAULT_GC_GRACE_MS = 30_000;

export class BlockAllocator implements ReconcilingNodeIpam {
  private readonly kube: KubeClient;
  private readonly node: string;
  private readonly cnName: string;
  private readonly log: Logger | undefined;
  private readonly opts: NodeIpamOptions;
  private readonly mutex = new KeyedMutex();
  /** pool name -> block name -> last object seen (a cache; the API is the truth). */
  private readonly blocks = new Map<string, Map<string, CachedBlock>>();
  private readonly loading = new Map<string, Promise<void>>();
  private readonly loaded = new Set<string>();
  /** Changes waiting for the next write of a block, and the blocks being written now. */
  private readonly queued = new Map<string, PendingChange[]>();
  private readonly writing = new Set<string>();
  private poolCache?: { at: number; pools: PoolDef[] };
  private labelCache?: { at: number; labels: Record<string, string> };

  constructor(opts: NodeIpamOptions) {
    this.opts = opts;
    this.kube = opts.kube;
    this.node = opts.node;
    this.cnName = opts.clusterNetwork;
    this.log = opts.logger;
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
    const pools = await this.requestedPools(req);
    const statics = assignStatics(pools, req.staticIPs ?? []);
    await Promise.all(pools.map((p) => this.ensureLoaded(p)));
    const ref: AttachmentRef = { containerID: req.containerID, interface: req.interface };
    const now = new Date().toISOString();
    const record: Allocation = {
      namespace: req.namespace,
      pod: req.pod,
      containerID: req.containerID,
      interface: req.interface,
      allocatedAt: now,
      node: this.node,
    };
    // Pools are independent objects: allocate from them at once (dual-stack costs one round trip).
    const outcomes = await Promise.allSettled(
      pools.map(async (pool) => {
        // Idempotent ADD: an attachment that already holds an address of this pool keeps it.
        const held = await this.heldInPool(pool, ref);
        if (held.length > 0) return { got: held[0]!, fresh: false };
        const staticIP = statics.get(pool.name);
        const got = staticIP
          ? await this.allocateStatic(pool, staticIP, { ...record, static: true })
          : await this.allocateDynamic(pool, record);
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
    const all = await whenNotBusy(() => this.kube.listAll<IPBlock>(IPBlockResource));
    let n = 0;
    for (const b of all.items) {
      if (!b.spec || heldBy(b.spec, ref).length === 0) continue;
      const pool = { name: b.spec.pool };
      this.poolMap(pool).set(b.metadata.name, b);
      n +=
        (await this.mutate(pool, b.metadata.name, (c) => {
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

  async gc(valid: AttachmentRef[], graceMs = DEFAULT_GC_GRACE_MS): Promise<number> {
    const keep = new Set(valid.map((v) => `${v.containerID}\u0000${v.interface}`));
    return this.sweep(graceMs, (a) => !keep.has(`${a.containerID}\u0000${a.interface}`), 'gc');
  }

  async releaseOrphans(livePods: LivePod[], graceMs = DEFAULT_GC_GRACE_MS): Promise<number> {
    const live = new Set(livePods.map((p) => `${p.namespace}/${p.name}`));
    return this.sweep(graceMs, (a) => !live.has(`${a.namespace}/${a.pod}`), 'orphan reconciliation');
  }

  /** Re-reads the ClusterNetwork and every pool's blocks from the API. */
  async refresh(): Promise<void> {
    this.poolCache = undefined;
    for (const pool of await this.knownPools()) await this.reload(pool);
  }

  // ---- pools -------------------------------------------------------------------------------

  private async knownPools(): Promise<PoolDef[]> {
    const pools = await this.pools();
    await Promise.all(pools.map((p) => this.ensureLoaded(p)));
    return pools;
  }

  private async pools(): Promise<PoolDef[]> {
    if (this.opts.spec) return (this.poolCache ??= { at: 0, pools: poolsOf(this.opts.spec) }).pools;
    const ttl = this.opts.cacheMs ?? 5000;
    if (this.poolCache && Date.now() - this.poolCache.at < ttl) return this.poolCache.pools;
    const cn = await whenNotBusy(() =>
      this.kube.getOrUndefined<ClusterNetwork>(ClusterNetworkResource, this.cnName),
    );
    if (!cn?.spec)
      throw new IpamError(`ClusterNetwork ${this.cnName} not found: IPAM has no pools to allocate from`, 11);
    this.poolCache = { at: Date.now(), pools: poolsOf(cn.spec) };
    return this.poolCache.pools;
  }

  private async nodeLabels(): Promise<Record<string, string>> {
    if (this.opts.nodeLabels) return this.opts.nodeLabels;
    const ttl = this.opts.cacheMs ?? 5000;
    if (this.labelCache && Date.now() - this.labelCache.at < ttl) return this.labelCache.labels;
    const node = await this.kube.getOrUndefined(Builtin.Node, this.node);
    this.labelCache = { at: Date.now(), labels: node?.metadata.labels ?? {} };
    return this.labelCache.labels;
  }

  private async requestedPools(req: AllocationRequest): Promise<PoolDef[]> {
    const all = await this.pools();
    if (req.pools && req.pools.length > 0) {
      return req.pools.map((name) => {
        const p = all.find((x) => x.name === name);
        if (!p) {
          throw new UnknownPoolError(
            `pool ${name} is not in ClusterNetwork ${this.cnName} (pools: ${all.map((x) => x.name).join(', ') || 'none'})`,
          );
        }
        return p;
      });
    }
    const chosen = defaultPools(all, await this.nodeLabels());
    if (chosen.length === 0) {
      throw new UnknownPoolError(
        `no pod pool of ClusterNetwork ${this.cnName} selects node ${this.node}: check the pools' nodeSelector`,
      );
    }
    return chosen;
  }

  // ---- cache -------------------------------------------------------------------------------

  private poolMap(pool: Pick<PoolDef, 'name'>): Map<string, CachedBlock> {
    let m = this.blocks.get(pool.name);
    if (!m) {
      m = new Map();
      this.blocks.set(pool.name, m);
    }
    return m;
  }

  private async ensureLoaded(pool: PoolDef): Promise<void> {
    if (this.loaded.has(pool.name)) return;
    let p = this.loading.get(pool.name);
    if (!p) {
      p = this.reload(pool)
        .then(() => void this.loaded.add(pool.name))
        .finally(() => this.loading.delete(pool.name));
      this.loading.set(pool.name, p);
    }
    await p;
  }

  /**
   * Re-lists the pool's blocks into the cache in place. A cached copy newer than the list (written
   * by this allocator while the list was in flight) is kept; everything else takes the list's word.
   */
  private async reload(pool: PoolDef): Promise<void> {
    const list = await whenNotBusy(() =>
      this.kube.listAll<IPBlock>(IPBlockResource, undefined, {
        labelSelector: `${BLOCK_POOL_LABEL}=${poolKey(pool.name)}`,
      }),
    );
    const m = this.poolMap(pool);
    const listed = new Set<string>();
    for (const b of list.items) {
      if (b.spec?.pool !== pool.name) continue;
      listed.add(b.metadata.name);
      const cached = m.get(b.metadata.name);
      if (!cached || !newer(cached.metadata.resourceVersion, b.metadata.resourceVersion))
        m.set(b.metadata.name, b);
    }
    for (const [name, cached] of m) {
      if (listed.has(name)) continue;
      if (!cached || !newer(cached.metadata.resourceVersion, list.metadata.resourceVersion)) m.delete(name);
    }
  }

  /** Reads blocks known only as placeholders, so scans see their allocations. */
  private async materialize(pool: PoolDef): Promise<IPBlock[]> {
    const m = this.poolMap(pool);
    const missing = [...m].filter(([, b]) => b === null).map(([name]) => name);
    await Promise.all(
      missing.map(async (name) => {
        const b = await this.kube.getOrUndefined<IPBlock>(IPBlockResource, name);
        if (b) {
          if (m.get(name) === null) m.set(name, b);
        } else m.delete(name);
      }),
    );
    return [...m.values()].filter((b): b is IPBlock => b !== null);
  }

  private async heldInPool(pool: PoolDef, ref: AttachmentRef): Promise<AllocatedIP[]> {
    const out: AllocatedIP[] = [];
    for (const b of await this.materialize(pool)) {
      for (const ip of heldBy(b.spec!, ref)) out.push(toAllocated(pool, b.spec!.cidr, ip));
    }
    return out;
  }

  // ---- writes ------------------------------------------------------------------------------

  /**
   * Applies `change` to the block and writes it with the resourceVersion read; on 409 re-reads and
   * re-applies. `change` mutates the copy it is given and answers whether it changed anything and
   * what to return; it must throw (a refusal) before mutating, never after. Answers undefined when
   * the block no longer exists.
   *
   * Writes to one block are serialised in-process, and changes queued while a write is in flight
   * go out together in the next write (group commit): a burst of ADDs on one node costs a few
   * writes, not one each, and the node never conflicts with itself.
   */
  private mutate<T>(
    pool: Pick<PoolDef, 'name'>,
    name: string,
    change: (block: IPBlock) => { changed: boolean; result: T },
  ): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      const queue = this.queued.get(name) ?? [];
      queue.push({ change, resolve: resolve as (v: unknown) => void, reject });
      this.queued.set(name, queue);
      if (!this.writing.has(name)) void this.drain(pool, name);
    });
  }

  private async drain(pool: Pick<PoolDef, 'name'>, name: string): Promise<void> {
    this.writing.add(name);
    try {
      for (let batch = this.queued.get(name); batch && batch.length > 0; batch = this.queued.get(name)) {
        this.queued.delete(name);
        await this.writeBatch(pool, name, batch);
      }
    } finally {
      this.writing.delete(name);
    }
  }

  /** One write carrying every queued change; settles each change's promise, never throws. */
  private async writeBatch(pool: Pick<PoolDef, 'name'>, name: string, batch: PendingChange[]): Promise<void> {
    const m = this.poolMap(pool);
    let pending = batch;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS && pending.length > 0; attempt++) {
      let current = m.get(name) ?? null;
      const fresh = !current;
      if (!current) {
        try {
          current =
            (await whenNotBusy(() => this.kube.getOrUndefined<IPBlock>(IPBlockResource, name))) ?? null;
        } catch (err: unknown) {
          for (const p of pending) p.reject(err);
          return;
        }
        if (!current) {
          m.delete(name);
          for (const p of pending) p.resolve(undefined);
          return;
        }
        m.set(name, current);
      }
      const copy = structuredClone(current);
      copy.spec!.allocations ??= {};
      const applied: { p: PendingChange; result: unknown }[] = [];
      let changed = false;
      let stale = false;
      for (const p of pending) {
        try {
          const out = p.change(copy);
          applied.push({ p, result: out.result });
          changed ||= out.changed;
        } catch (err: unknown) {
          // A refusal (e.g. a static IP held by someone) is only final on a fresh read.
          if (fresh) p.reject(err);
          else stale = true;
        }
      }
      if (stale) {
        m.set(name, null);
        continue; // re-read and re-apply everything not refused on a fresh read
      }
      pending = applied.map((a) => a.p);
      if (!changed) {
        for (const a of applied) a.p.resolve(a.result);
        return;
      }
      copy.spec!.used = Object.keys(copy.spec!.allocations).length;
      try {
        const saved = await whenNotBusy(() => this.kube.replace<IPBlock>(IPBlockResource, copy));
        m.set(name, saved);
        for (const a of applied) a.p.resolve(a.result);
        return;
      } catch (err: unknown) {
        if (isApiError(err, 409)) {
          ipamMetrics.conflicts.inc();
          m.set(name, null);
          continue;
        }
        if (isApiError(err, 404)) {
          m.delete(name);
          for (const a of applied) a.p.resolve(undefined);
          return;
        }
        // The write may or may not have landed: forget the cached copy so the next read is fresh.
        m.set(name, null);
        for (const a of applied) a.p.reject(err);
        return;
      }
    }
    const err = new IpamError(
      `gave up writing IPBlock ${name} after ${MAX_WRITE_ATTEMPTS} conflicting updates; try again`,
      11,
    );
    for (const p of pending) p.reject(err);
  }

  /** Takes the first free address of an existing block, or undefined when it is full or gone. */
  private takeFree(pool: PoolDef, name: string, record: Allocation): Promise<string | undefined> {
    return this.mutate(pool, name, (b) => {
      const ip = firstFree(pool, b.spec!);
      if (ip === undefined) return { changed: false, result: undefined };
      b.spec!.allocations[ip] = record;
      return { changed: true, result: ip };
    });
  }

  private async allocateDynamic(pool: PoolDef, record: Allocation): Promise<AllocatedIP> {
    const m = this.poolMap(pool);
    const mine = (): IPBlock[] =>
      [...m.values()]
        .filter((b): b is IPBlock => b !== null && (pool.kind === 'attachment' || b.spec?.node === this.node))
        .sort(byCidr);
    // 1. Our own blocks (for attachment pools: every shared block).
    for (const b of mine()) {
      const ip = await this.takeFree(pool, b.metadata.name, record);
      if (ip) return toAllocated(pool, b.spec!.cidr, ip);
    }
    // The slow path runs one at a time per pool on this node, so concurrent ADDs claim one block, not many.
    return this.mutex.run(`claim\u0000${pool.name}`, () => this.allocateSlow(pool, record, mine));
  }

  private async allocateSlow(pool: PoolDef, record: Allocation, mine: () => IPBlock[]): Promise<AllocatedIP> {
    const m = this.poolMap(pool);
    // 2. Another ADD may have claimed a block while we waited; else claim a block nobody has.
    for (const b of mine()) {
      const ip = await this.takeFree(pool, b.metadata.name, record);
      if (ip) return toAllocated(pool, b.spec!.cidr, ip);
    }
    let got = await this.claim(pool, record);
    if (got) return got;
    // 3. The cache may be stale: re-list, then try own blocks and claiming once more.
    await this.reload(pool);
    for (const b of mine()) {
      const ip = await this.takeFree(pool, b.metadata.name, record);
      if (ip) return toAllocated(pool, b.spec!.cidr, ip);
    }
    got = await this.claim(pool, record);
    if (got) return got;
    if (pool.kind === 'pod') {
      // 4. Adopt a block that lost its node (reclaimed by the operator), then 5. borrow.
      const others = [...m.values()].filter((b): b is IPBlock => b !== null && b.spec?.node !== this.node);
      for (const b of shuffle(others.filter((x) => !x.spec?.node))) {
        const ip = await this.mutate(pool, b.metadata.name, (c) => {
          if (c.spec!.node) return { changed: false, result: undefined };
          const free = firstFree(pool, c.spec!);
          if (free === undefined) return { changed: false, result: undefined };
          c.spec!.node = this.node;
          c.metadata.labels = { ...c.metadata.labels, [BLOCK_NODE_LABEL]: this.node };
          c.spec!.allocations[free] = record;
          return { changed: true, result: free };
        });
        if (ip) return toAllocated(pool, b.spec!.cidr, ip);
      }
      for (const b of shuffle(others.filter((x) => x.spec?.node && firstFree(pool, x.spec) !== undefined))) {
        const ip = await this.takeFree(pool, b.metadata.name, record);
        if (ip) {
          ipamMetrics.borrowed.inc({ pool: pool.name });
          this.log?.info(
            { pool: pool.name, block: b.metadata.name, ip },
            'borrowed an address from another node',
          );
          return toAllocated(pool, b.spec!.cidr, ip);
        }
      }
    }
    ipamMetrics.exhausted.inc({ pool: pool.name });
    throw new PoolExhaustedError(pool.name, pool.cidrText);
  }

  /** Creates a block no one holds yet, with the allocation already in it (claim + allocate = one write). */
  private async claim(pool: PoolDef, record: Allocation): Promise<AllocatedIP | undefined> {
    const m = this.poolMap(pool);
    const count = blockCount(pool.cidr, pool.blockPrefix);
    const firstIdx = blockIndexOf(pool.cidr, pool.blockPrefix, pool.family, pool.first) ?? 0n;
    const lastIdx = blockIndexOf(pool.cidr, pool.blockPrefix, pool.family, pool.last) ?? count - 1n;
    const span = lastIdx - firstIdx + 1n;
    // Nodes start their search at different blocks so claims rarely collide.
    const start = pool.kind === 'pod' ? BigInt(hash(this.node)) % span : 0n;
    const scanLimit = BigInt(m.size + 64);
    for (let i = 0n; i < span && i < scanLimit; i++) {
      const idx = firstIdx + ((start + i) % span);
      const block = newBlock(
        pool,
        idx,
        pool.kind === 'pod' ? this.node : undefined,
        this.opts.spec ? undefined : this.cnName,
      );
      if (m.has(block.metadata.name)) continue;
      const ip = firstFree(pool, block.spec!);
      if (ip === undefined) continue;
      block.spec!.allocations[ip] = record;
      block.spec!.used = 1;
      try {
        const saved = await whenNotBusy(() => this.kube.create<IPBlock>(IPBlockResource, block));
        m.set(block.metadata.name, saved);
        ipamMetrics.blocksClaimed.inc({ pool: pool.name });
        this.log?.info({ pool: pool.name, block: saved.spec!.cidr }, 'claimed a block');
        return toAllocated(pool, saved.spec!.cidr, ip);
      } catch (err: unknown) {
        if (!isApiError(err, 409)) throw err;
        m.set(block.metadata.name, null);
      }
    }
    return undefined;
  }

  private async allocateStatic(pool: PoolDef, ip: string, record: Allocation): Promise<AllocatedIP> {
    const { family, value } = parseIP(ip);
    const idx = blockIndexOf(pool.cidr, pool.blockPrefix, family, value)!;
    const cidr = blockAt(pool.cidr, pool.blockPrefix, idx);
    const name = blockName(pool.name, cidr);
    const m = this.poolMap(pool);
    const ref = { containerID: record.containerID, interface: record.interface };
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      if (m.has(name)) {
        const done = await this.mutate(pool, name, (b) => {
          const holder = b.spec!.allocations[ip];
          if (holder && isHolder(holder, ref)) return { changed: false, result: true };
          if (holder) {
            throw new StaticIPConflictError(
              ip,
              `pod ${holder.namespace}/${holder.pod} (container ${holder.containerID.slice(0, 12)})`,
            );
          }
          b.spec!.allocations[ip] = record;
          return { changed: true, result: true };
        });
        if (done) return toAllocated(pool, formatCidr(cidr), ip);
        continue; // the block vanished: claim it
      }
      // Nobody we know of holds the block: claim it for this node (shared pools: for nobody).
      const block = newBlock(
        pool,
        idx,
        pool.kind === 'pod' ? this.node : undefined,
        this.opts.spec ? undefined : this.cnName,
      );
      block.spec!.allocations[ip] = record;
      block.spec!.used = 1;
      try {
        m.set(name, await whenNotBusy(() => this.kube.create<IPBlock>(IPBlockResource, block)));
        ipamMetrics.blocksClaimed.inc({ pool: pool.name });
        return toAllocated(pool, formatCidr(cidr), ip);
      } catch (err: unknown) {
        if (!isApiError(err, 409)) throw err;
        m.set(name, null);
      }
    }
    throw new IpamError(`gave up allocating static IP ${ip} after repeated conflicts; try again`, 11);
  }

  private async releaseInPool(pool: PoolDef, ref: AttachmentRef): Promise<number> {
    let n = 0;
    for (const b of await this.materialize(pool)) {
      if (heldBy(b.spec!, ref).length === 0) continue;
      const removed =
        (await this.mutate(pool, b.metadata.name, (c) => {
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
  private async sweep(graceMs: number, stale: (a: Allocation) => boolean, why: string): Promise<number> {
    const pools = await this.pools();
    let n = 0;
    for (const pool of pools) {
      await this.reload(pool); // a sweep decides from the API's view, not the cache's
      for (const b of [...this.poolMap(pool).values()]) {
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
          (await this.mutate(pool, b.metadata.name, (c) => {
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

/**
 * Retries a request the API server refused with 429 (e.g. "storage is (re)initializing" right
 * after a CRD update, or priority-and-fairness throttling); a 429 was not applied, so it is safe.
 */
async function whenNotBusy<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err: unknown) {
      if (!isApiError(err, 429) || attempt >= 20) throw err;
      await sleep(Math.min(1000, 50 * 2 ** attempt));
    }
  }
}

/** Whether resourceVersion a is newer than b (etcd revisions; unknown forms count as not newer). */
function newer(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) > BigInt(b);
}

function toAllocated(pool: PoolDef, block: string, ip: string): AllocatedIP {
  const out: AllocatedIP = {
    ip,
    prefixLength: pool.cidr.prefix,
    family: pool.family,
    pool: pool.name,
    block,
  };
  if (pool.gateway) out.gateway = pool.gateway;
  return out;
}

/** Maps each static IP to the one requested pool where it is a usable address; refuses the rest. */
export function assignStatics(pools: PoolDef[], staticIPs: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of staticIPs) {
    let ip: string;
    let parsed: { family: 4 | 6; value: bigint };
    try {
      ip = canonical(raw.includes('/') ? raw.slice(0, raw.indexOf('/')) : raw);
      parsed = parseIP(ip);
    } catch {
      throw new StaticIPOutOfPoolError(raw, pools.map((p) => `${p.name} ${p.cidrText}`).join(', '));
    }
    const pool = pools.find((p) => p.family === parsed.family && isStaticUsable(p, parsed.value));
    if (!pool)
      throw new StaticIPOutOfPoolError(ip, pools.map((p) => `${p.name} ${p.cidrText}`).join(', ') || 'none');
    if (out.has(pool.name))
      throw new StaticIPOutOfPoolError(
        ip,
        `${pool.name} already gets ${out.get(pool.name)}; one address per pool`,
      );
    out.set(pool.name, ip);
  }
  return out;
}

function byCidr(a: IPBlock, b: IPBlock): number {
  const x = parseCidr(a.spec!.cidr).base;
  const y = parseCidr(b.spec!.cidr).base;
  return x < y ? -1 : x > y ? 1 : 0;
}

function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** FNV-1a over the node name: a stable, spread-out starting block per node. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
