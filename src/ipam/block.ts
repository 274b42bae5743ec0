// Pure logic on one IPBlock: its deterministic name, finding a free address, and the holders of an
// attachment. The allocator wraps these in optimistic-concurrency writes; keeping them pure keeps
// the rules (what is free, what is whose) unit-testable without an API server.
import type { Allocation, IPBlock, IPBlockSpec } from '../api/ipam.ts';
import { API_VERSION } from '../api/group.ts';
import { BLOCK_NODE_LABEL, BLOCK_POOL_LABEL } from '../api/ipam.ts';
import { blockAt, formatCidr, formatIP, parseCidr, parseIP, type Cidr } from './cidr.ts';
import { isUsable, type PoolDef } from './pools.ts';
import type { AttachmentRef, LivePod } from './types.ts';

/** Label value (and name prefix) for a pool: `attachment:x` becomes `attachment.x` (labels allow no colon). */
export function poolKey(pool: string): string {
  return pool.replace(/:/g, '.');
}

/**
 * The block's object name: pool key + block CIDR with separators as dashes, e.g.
 * `default.10-244-0-64-26` or `v6.fd00-10-244--40-122`. Pool names are DNS labels (no dots), so
 * the dot keeps names of different pools apart; the same block always gets the same name, which is
 * what makes claiming a block a create that fails with 409 for the second node.
 */
export function blockName(pool: string, block: Cidr): string {
  return `${poolKey(pool)}.${formatCidr(block).replace(/[.:/]/g, '-')}`;
}

export function newBlock(
  pool: PoolDef,
  index: bigint,
  node: string | undefined,
  clusterNetwork?: string,
): IPBlock {
  const cidr = blockAt(pool.cidr, pool.blockPrefix, index);
  const labels: Record<string, string> = { [BLOCK_POOL_LABEL]: poolKey(pool.name) };
  if (node) labels[BLOCK_NODE_LABEL] = node;
  if (clusterNetwork) labels['network.trellis.dev/clusternetwork'] = clusterNetwork;
  const spec: IPBlockSpec = { pool: pool.name, cidr: formatCidr(cidr), allocations: {}, used: 0 };
  if (node) spec.node = node;
  return {
    apiVersion: API_VERSION,
    kind: 'IPBlock',
    metadata: { name: blockName(pool.name, cidr), labels },
    spec,
  };
}

/** The lowest usable address of the block not yet allocated, or undefined when the block is full. */
export function firstFree(pool: PoolDef, spec: IPBlockSpec): string | undefined {
  const cidr = parseCidr(spec.cidr);
  const size = 1n << BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix);
  const taken = spec.allocations ?? {};
  for (let i = 0n; i < size; i++) {
    const v = cidr.base + i;
    if (!isUsable(pool, v)) continue;
    const ip = formatIP(cidr.family, v);
    if (!Object.hasOwn(taken, ip)) return ip;
  }
  return undefined;
}

/** Number of addresses of the block that may ever be handed out. */
export function usableCount(pool: PoolDef, spec: IPBlockSpec): number {
  const cidr = parseCidr(spec.cidr);
  const size = 1n << BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix);
  if (size > 65536n) return Number(size);
  let n = 0;
  for (let i = 0n; i < size; i++) if (isUsable(pool, cidr.base + i)) n++;
  return n;
}

export function isHolder(a: Allocation, ref: AttachmentRef): boolean {
  return a.containerID === ref.containerID && a.interface === ref.interface;
}

/** Addresses of the block held by this container+interface. */
export function heldBy(spec: IPBlockSpec, ref: AttachmentRef): string[] {
  return Object.entries(spec.allocations ?? {})
    .filter(([, a]) => isHolder(a, ref))
    .map(([ip]) => ip);
}

/** The node that made the allocation: recorded on it, or else the block's node. */
export function allocatingNode(spec: IPBlockSpec, a: Allocation): string | undefined {
  return a.node ?? spec.node;
}

/**
 * Which allocations no live pod holds: none of that namespace/name, or one whose UID differs from
 * the UID recorded at allocation (a StatefulSet pod recreated under the same name is a new holder,
 * so the old incarnation's address is released rather than inherited by timing). Allocations from
 * before UIDs were recorded, and pods listed without a UID, fall back to the name.
 */
export function orphanOf(livePods: LivePod[]): (a: Allocation) => boolean {
  const uids = new Map<string, Set<string | undefined>>();
  for (const p of livePods) {
    const key = `${p.namespace}/${p.name}`;
    const set = uids.get(key) ?? new Set<string | undefined>();
    set.add(p.uid);
    uids.set(key, set);
  }
  return (a) => {
    const live = uids.get(`${a.namespace}/${a.pod}`);
    if (!live) return true;
    if (!a.podUID || live.has(undefined)) return false;
    return !live.has(a.podUID);
  };
}

/** Whether an allocation is at least `graceMs` old at `now` (unparsable times count as old). */
export function olderThan(a: Allocation, graceMs: number, now: number): boolean {
  const t = Date.parse(a.allocatedAt);
  return Number.isNaN(t) || now - t >= graceMs;
}

/** Canonical address text, so `10.0.0.1` and `fd00::01` compare equal to how blocks key them. */
export function canonical(ip: string): string {
  const { family, value } = parseIP(ip);
  return formatIP(family, value);
}
