// Pool usage for ClusterNetwork status (the operator writes it; `kubectl get cn -o yaml` shows it):
// capacity counts usable addresses, allocated counts allocations across the pool's blocks.
import type { ClusterNetwork, PoolUsage } from '../api/clusternetwork.ts';
import type { IPBlock } from '../api/ipam.ts';
import { containsIP, parseCidr } from './cidr.ts';
import { poolsOf, type PoolDef } from './pools.ts';

export function summarizePoolUsage(cn: Pick<ClusterNetwork, 'spec'>, blocks: IPBlock[]): PoolUsage[] {
  if (!cn.spec) return [];
  return poolsOf(cn.spec).map((pool) => {
    // Pool names are per ClusterNetwork: another one's pool of the same name has blocks elsewhere.
    const mine = blocks.filter((b) => b.spec?.pool === pool.name && insidePool(pool, b.spec.cidr));
    return {
      name: pool.name,
      cidr: pool.cidrText,
      capacity: capacityOf(pool),
      allocated: mine.reduce((n, b) => n + Object.keys(b.spec?.allocations ?? {}).length, 0),
      blocks: mine.length,
    };
  });
}

/** Usable addresses of the pool, capped at Number.MAX_SAFE_INTEGER (IPv6 pools are vast). */
export function capacityOf(pool: PoolDef): number {
  let n = pool.last - pool.first + 1n;
  for (const r of pool.reserved) {
    const lo = r.base > pool.first ? r.base : pool.first;
    const size = 1n << BigInt((r.family === 4 ? 32 : 128) - r.prefix);
    const hi = r.base + size - 1n < pool.last ? r.base + size - 1n : pool.last;
    if (hi >= lo) n -= hi - lo + 1n;
  }
  if (n < 0n) n = 0n;
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

function insidePool(pool: PoolDef, blockCidr: string): boolean {
  try {
    const c = parseCidr(blockCidr);
    return c.prefix >= pool.cidr.prefix && containsIP(pool.cidr, c.family, c.base);
  } catch {
    return false;
  }
}
