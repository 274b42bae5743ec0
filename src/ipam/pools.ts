// What IPAM needs to know about a pool, derived from a ClusterNetwork spec: its CIDR, the block
// size it is carved into, which addresses of it may be handed out, and whether blocks are per node
// (pod pools) or shared (attachment pools). Pure functions, unit-tested.
import type { ClusterNetworkSpec } from '../api/clusternetwork.ts';
import { matchesSelector, type LabelSelector } from '../selector/index.ts';
import { poolBlockSize } from '../api/clusternetwork.ts';
import { containsIP, lastAddress, parseCidr, parseIP, type Cidr, type Family } from './cidr.ts';

export const ATTACHMENT_POOL_PREFIX = 'attachment:';

export interface PoolDef {
  /** Pool name as requests use it: the pod pool's name, or `attachment:<name>`. */
  name: string;
  kind: 'pod' | 'attachment';
  cidrText: string;
  cidr: Cidr;
  family: Family;
  blockPrefix: number;
  nodeSelector?: LabelSelector;
  /** Inclusive range of addresses that may be handed out. */
  first: bigint;
  last: bigint;
  /** Addresses never handed out (gateway, exclusions). */
  reserved: Cidr[];
  gateway?: string;
  /** Attachment pools: pod namespaces that may draw from it (`*`: all). Pod pools: undefined (all). */
  namespaces?: string[];
  /** Namespaces allowed static addresses (`*`: all); undefined or empty: none. */
  staticNamespaces?: string[];
  /** Where the policy lives in the ClusterNetwork, for messages. */
  policyField: string;
}

/** Default block prefix for shared attachment pools: small enough that nodes rarely contend. */
const ATTACHMENT_BLOCK = { 4: 26, 6: 122 } as const;

/** Every pool of the spec: pod pools, then one `attachment:<name>` pool per attachment with a pool. */
export function poolsOf(spec: Pick<ClusterNetworkSpec, 'pools' | 'attachments'>): PoolDef[] {
  const out: PoolDef[] = [];
  for (const p of spec.pools ?? []) {
    const cidr = parseCidr(p.cidr);
    const last = lastAddress(cidr);
    // The pool's network address (and IPv4 broadcast) are never handed out; everything else is.
    const first = cidr.prefix < (cidr.family === 4 ? 31 : 127) ? cidr.base + 1n : cidr.base;
    out.push({
      name: p.name,
      kind: 'pod',
      cidrText: p.cidr,
      cidr,
      family: cidr.family,
      blockPrefix: poolBlockSize(p),
      nodeSelector: p.nodeSelector,
      staticNamespaces: p.staticAddresses?.namespaces,
      policyField: `spec.pools[name=${p.name}].staticAddresses.namespaces`,
      first,
      last: cidr.family === 4 && cidr.prefix < 31 ? last - 1n : last,
      reserved: [],
    });
  }
  for (const a of spec.attachments ?? []) {
    if (!a.pool) continue;
    const cidr = parseCidr(a.pool.cidr, true);
    const hostRange = cidr.prefix < (cidr.family === 4 ? 31 : 127);
    const first = a.pool.rangeStart
      ? parseIP(a.pool.rangeStart).value
      : hostRange
        ? cidr.base + 1n
        : cidr.base;
    const last = a.pool.rangeEnd
      ? parseIP(a.pool.rangeEnd).value
      : cidr.family === 4 && hostRange
        ? lastAddress(cidr) - 1n
        : lastAddress(cidr);
    const reserved = (a.pool.exclude ?? []).map((e) =>
      parseCidr(e.includes('/') ? e : `${e}/${cidr.family === 4 ? 32 : 128}`, true),
    );
    if (a.pool.gateway) {
      const gw = parseIP(a.pool.gateway);
      reserved.push({ family: gw.family, base: gw.value, prefix: cidr.family === 4 ? 32 : 128 });
    }
    out.push({
      name: `${ATTACHMENT_POOL_PREFIX}${a.name}`,
      kind: 'attachment',
      cidrText: a.pool.cidr,
      cidr: { ...cidr },
      family: cidr.family,
      blockPrefix: Math.max(cidr.prefix, ATTACHMENT_BLOCK[cidr.family]),
      first,
      last,
      reserved,
      gateway: a.pool.gateway,
      namespaces: [a.namespace ?? 'default', ...(a.pool.namespaces ?? [])],
      staticNamespaces: a.pool.staticAddresses?.namespaces,
      policyField: `spec.attachments[name=${a.name}].pool.staticAddresses.namespaces`,
    });
  }
  return out;
}

/**
 * Whether a block's CIDR is exactly one block of its pool: the pool exists, the CIDR parses without
 * host bits, has the pool's block prefix and lies inside the pool. Routes are programmed only for
 * blocks that fit, so a block written by a compromised node (0.0.0.0/1, say) steers no traffic even
 * where the admission policy is missing.
 */
export function blockFits(pools: PoolDef[], block: { pool?: string; cidr?: string }): boolean {
  const pool = pools.find((p) => p.name === block.pool);
  if (!pool || !block.cidr) return false;
  let cidr: Cidr;
  try {
    cidr = parseCidr(block.cidr);
  } catch {
    return false; // unparsable or host bits set: not a block
  }
  return (
    cidr.family === pool.family &&
    cidr.prefix === pool.blockPrefix &&
    containsIP(pool.cidr, pool.family, cidr.base) &&
    containsIP(pool.cidr, pool.family, lastAddress(cidr))
  );
}

/** Whether pods of the namespace may draw addresses from this pool at all (attachment pools). */
export function poolAllowed(pool: PoolDef, namespace: string): boolean {
  return !pool.namespaces || pool.namespaces.includes('*') || pool.namespaces.includes(namespace);
}

/** Whether pods of the namespace may choose an address of this pool (staticAddresses). */
export function staticAllowed(pool: PoolDef, namespace: string): boolean {
  const allowed = pool.staticNamespaces ?? [];
  return allowed.includes('*') || allowed.includes(namespace);
}

/** Whether the address may be handed out from this pool (in range, not reserved). */
export function isUsable(pool: PoolDef, value: bigint): boolean {
  if (value < pool.first || value > pool.last) return false;
  return !pool.reserved.some((r) => containsIP(r, pool.family, value));
}

/**
 * Whether the address may be requested as a static IP. Pod pools: the same as dynamic allocation.
 * Attachment pools: anywhere in the CIDR but its network address, IPv4 broadcast and the gateway,
 * since statics usually sit outside the range kept for dynamic allocation.
 */
export function isStaticUsable(pool: PoolDef, value: bigint): boolean {
  if (pool.kind === 'pod') return isUsable(pool, value);
  if (!containsIP(pool.cidr, pool.family, value)) return false;
  const hostRange = pool.cidr.prefix < (pool.family === 4 ? 31 : 127);
  if (hostRange && value === pool.cidr.base) return false;
  if (hostRange && pool.family === 4 && value === lastAddress(pool.cidr)) return false;
  return !(pool.gateway !== undefined && parseIP(pool.gateway).value === value);
}

/** The pools a pod gets by default on this node: the first matching IPv4 and the first matching IPv6 pod pool. */
export function defaultPools(pools: PoolDef[], nodeLabels: Record<string, string>): PoolDef[] {
  const out: PoolDef[] = [];
  for (const family of [4, 6] as const) {
    const p = pools.find(
      (x) =>
        x.kind === 'pod' && x.family === family && matchesSelector(x.nodeSelector, nodeLabels, 'everything'),
    );
    if (p) out.push(p);
  }
  return out;
}
