// Where an address comes from: the allocation strategy, on top of the block store. In order: a free
// address in this node's own blocks (attachment pools: any shared block), a new block claimed with
// the allocation already in it, a re-list and one more try, then a block that lost its node, then
// borrowing from another node's block. Static addresses go to their one block, claiming it if
// nobody has. Every step is a store write that the API server may refuse, never a local decision.
import { BLOCK_NODE_LABEL, type Allocation, type IPBlock } from '../api/ipam.ts';
import type { Logger } from '../log/logger.ts';
import { KeyedMutex } from '../util/keyed-mutex.ts';
import { blockName, canonical, firstFree, isHolder, newBlock } from './block.ts';
import { MAX_WRITE_ATTEMPTS, type BlockStore } from './block-store.ts';
import { blockAt, blockCount, blockIndexOf, formatCidr, parseCidr, parseIP } from './cidr.ts';
import {
  IpamError,
  PoolExhaustedError,
  StaticIPConflictError,
  StaticIPOutOfPoolError,
  StaticIPUnclaimedBlockError,
} from './errors.ts';
import { ipamMetrics } from './metrics.ts';
import { isStaticUsable, type PoolDef } from './pools.ts';
import type { AllocatedIP } from './types.ts';

export interface StrategyOptions {
  store: BlockStore;
  /** This node: pod-pool blocks claimed get its affinity. */
  node: string;
  /** ClusterNetwork label on claimed blocks; undefined when pools came from a literal spec. */
  owner: string | undefined;
  logger?: Logger | undefined;
}

export class AllocationStrategy {
  private readonly store: BlockStore;
  private readonly node: string;
  private readonly owner: string | undefined;
  private readonly log: Logger | undefined;
  private readonly mutex = new KeyedMutex();

  constructor(opts: StrategyOptions) {
    this.store = opts.store;
    this.node = opts.node;
    this.owner = opts.owner;
    this.log = opts.logger;
  }

  async allocateDynamic(pool: PoolDef, record: Allocation): Promise<AllocatedIP> {
    const m = this.store.poolMap(pool);
    const mine = (): IPBlock[] =>
      [...m.values()]
        .filter((b): b is IPBlock => b !== null && (pool.kind === 'attachment' || b.spec?.node === this.node))
        .sort(byCidr);
    // 1. Our own blocks (for attachment pools: every shared block).
    const ip = await this.fromOwn(pool, record, mine);
    if (ip) return ip;
    // The slow path runs one at a time per pool on this node, so concurrent ADDs claim one block, not many.
    return this.mutex.run(`claim\u0000${pool.name}`, () => this.allocateSlow(pool, record, mine));
  }

  private async fromOwn(
    pool: PoolDef,
    record: Allocation,
    mine: () => IPBlock[],
  ): Promise<AllocatedIP | undefined> {
    for (const b of mine()) {
      const ip = await this.takeFree(pool, b.metadata.name, record);
      if (ip) return toAllocated(pool, b.spec!.cidr, ip);
    }
    return undefined;
  }

  private async allocateSlow(pool: PoolDef, record: Allocation, mine: () => IPBlock[]): Promise<AllocatedIP> {
    // 2. Another ADD may have claimed a block while we waited; else claim a block nobody has.
    let got = (await this.fromOwn(pool, record, mine)) ?? (await this.claim(pool, record));
    if (got) return got;
    // 3. The cache may be stale: re-list, then try own blocks and claiming once more.
    await this.store.reload(pool);
    got = (await this.fromOwn(pool, record, mine)) ?? (await this.claim(pool, record));
    if (got) return got;
    if (pool.kind === 'pod') {
      got = (await this.adopt(pool, record)) ?? (await this.borrow(pool, record));
      if (got) return got;
    }
    ipamMetrics.exhausted.inc({ pool: pool.name });
    throw new PoolExhaustedError(pool.name, pool.cidrText);
  }

  /** 4. Adopts a block that lost its node (reclaimed by the operator). */
  private async adopt(pool: PoolDef, record: Allocation): Promise<AllocatedIP | undefined> {
    const orphans = [...this.store.poolMap(pool).values()].filter(
      (b): b is IPBlock => b !== null && !b.spec?.node,
    );
    for (const b of shuffle(orphans)) {
      const ip = await this.store.mutate(pool, b.metadata.name, (c) => {
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
    return undefined;
  }

  /** 5. Borrows a free address from another node's block. */
  private async borrow(pool: PoolDef, record: Allocation): Promise<AllocatedIP | undefined> {
    const others = [...this.store.poolMap(pool).values()].filter(
      (b): b is IPBlock =>
        b !== null && !!b.spec?.node && b.spec.node !== this.node && firstFree(pool, b.spec) !== undefined,
    );
    for (const b of shuffle(others)) {
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
    return undefined;
  }

  /** Takes the first free address of an existing block, or undefined when it is full or gone. */
  private takeFree(pool: PoolDef, name: string, record: Allocation): Promise<string | undefined> {
    return this.store.mutate(pool, name, (b) => {
      const ip = firstFree(pool, b.spec!);
      if (ip === undefined) return { changed: false, result: undefined };
      b.spec!.allocations[ip] = record;
      return { changed: true, result: ip };
    });
  }

  private newBlockFor(pool: PoolDef, idx: bigint): IPBlock {
    return newBlock(pool, idx, pool.kind === 'pod' ? this.node : undefined, this.owner);
  }

  /** Creates a block no one holds yet, with the allocation already in it (claim + allocate = one write). */
  private async claim(pool: PoolDef, record: Allocation): Promise<AllocatedIP | undefined> {
    const m = this.store.poolMap(pool);
    const count = blockCount(pool.cidr, pool.blockPrefix);
    const firstIdx = blockIndexOf(pool.cidr, pool.blockPrefix, pool.family, pool.first) ?? 0n;
    const lastIdx = blockIndexOf(pool.cidr, pool.blockPrefix, pool.family, pool.last) ?? count - 1n;
    const span = lastIdx - firstIdx + 1n;
    // Nodes start their search at different blocks so claims rarely collide.
    const start = pool.kind === 'pod' ? BigInt(hash(this.node)) % span : 0n;
    const scanLimit = BigInt(m.size + 64);
    for (let i = 0n; i < span && i < scanLimit; i++) {
      const block = this.newBlockFor(pool, firstIdx + ((start + i) % span));
      if (m.has(block.metadata.name)) continue;
      const ip = firstFree(pool, block.spec!);
      if (ip === undefined) continue;
      block.spec!.allocations[ip] = record;
      block.spec!.used = 1;
      const saved = await this.store.create(pool, block);
      if (!saved) continue;
      ipamMetrics.blocksClaimed.inc({ pool: pool.name });
      this.log?.info({ pool: pool.name, block: saved.spec!.cidr }, 'claimed a block');
      return toAllocated(pool, saved.spec!.cidr, ip);
    }
    return undefined;
  }

  async allocateStatic(pool: PoolDef, ip: string, record: Allocation): Promise<AllocatedIP> {
    const { family, value } = parseIP(ip);
    const idx = blockIndexOf(pool.cidr, pool.blockPrefix, family, value)!;
    const cidr = blockAt(pool.cidr, pool.blockPrefix, idx);
    const name = blockName(pool.name, cidr);
    const ref = { containerID: record.containerID, interface: record.interface };
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      if (this.store.poolMap(pool).has(name)) {
        const done = await this.store.mutate(pool, name, (b) => {
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
      // Nobody we know of holds the block. A pod pool's block would become this node's for one
      // address (and be routed here): refuse. Shared attachment blocks belong to no node: create it.
      if (pool.kind === 'pod') {
        await this.store.reload(pool); // the cache may lag a block another node just claimed
        if (this.store.poolMap(pool).has(name)) continue;
        throw new StaticIPUnclaimedBlockError(ip, formatCidr(cidr), pool.name);
      }
      const block = this.newBlockFor(pool, idx);
      block.spec!.allocations[ip] = record;
      block.spec!.used = 1;
      if (await this.store.create(pool, block)) {
        ipamMetrics.blocksClaimed.inc({ pool: pool.name });
        return toAllocated(pool, formatCidr(cidr), ip);
      }
    }
    throw new IpamError(`gave up allocating static IP ${ip} after repeated conflicts; try again`, 11);
  }
}

export function toAllocated(pool: PoolDef, block: string, ip: string): AllocatedIP {
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
