// Pure address arithmetic for IPAM, IPv4 and IPv6 alike: addresses are bigints so one code path
// serves both families. No I/O here; every function is unit-tested in cidr.test.ts.
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** The network address (host bits cleared). */
  base: bigint;
  prefix: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

/** Parses an IPv4 or IPv6 address into its family and value; throws naming the bad input. */
export function parseIP(text: string): { family: Family; value: bigint } {
  if (isIPv4(text)) {
    const value = text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    return { family: 4, value };
  }
  if (isIPv6(text)) {
    if (text.includes('.'))
      throw new Error(`IPv6 address ${text} with an embedded IPv4 part is not supported`);
    const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
    const headParts = head ? head.split(':') : [];
    const tailParts = tail ? tail.split(':') : [];
    const zeros = tail === undefined ? 0 : 8 - headParts.length - tailParts.length;
    const groups = [...headParts, ...Array<string>(zeros).fill('0'), ...tailParts];
    const value = groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
    return { family: 6, value };
  }
  throw new Error(`${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
}

/** Canonical text form: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run as ::). */
export function formatIP(family: Family, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** The canonical form of an address text (e.g. FD00:0::1 -> fd00::1). */
export function canonicalIP(text: string): string {
  const { family, value } = parseIP(text);
  return formatIP(family, value);
}

/** Parses `addr/prefix`. Host bits must be clear unless `allowHostBits` (then they are masked off). */
export function parseCidr(text: string, allowHostBits = false): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0)
    throw new Error(`${JSON.stringify(text)} is not a CIDR: expected address/prefix, e.g. 10.244.0.0/16`);
  const { family, value } = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d+$/.test(prefixText) || prefix > BITS[family]) {
    throw new Error(`${JSON.stringify(text)}: prefix length must be 0..${BITS[family]}`);
  }
  const base = value & netmask(family, prefix);
  if (base !== value && !allowHostBits) {
    throw new Error(`${text} has host bits set: the network address is ${formatIP(family, base)}/${prefix}`);
  }
  return { family, base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIP(c.family, c.base)}/${c.prefix}`;
}

function netmask(family: Family, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  const all = (1n << bits) - 1n;
  return ((all >> BigInt(BITS[family] - prefix)) << BigInt(BITS[family] - prefix)) & all;
}

/** Number of addresses in the CIDR. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(BITS[c.family] - c.prefix);
}

/** The last address of the CIDR (the IPv4 broadcast address). */
export function lastAddress(c: Cidr): bigint {
  return c.base + cidrSize(c) - 1n;
}

export function containsIP(c: Cidr, family: Family, value: bigint): boolean {
  return c.family === family && value >= c.base && value <= lastAddress(c);
}

/** Whether `ip` (text) falls inside `c`. False for the other family or malformed input. */
export function contains(c: Cidr, ip: string): boolean {
  try {
    const { family, value } = parseIP(ip);
    return containsIP(c, family, value);
  } catch {
    return false;
  }
}

/** The n-th address of the CIDR (0 = network address). */
export function nthAddress(c: Cidr, n: bigint): bigint {
  if (n < 0n || n >= cidrSize(c)) throw new Error(`address index ${n} outside ${formatCidr(c)}`);
  return c.base + n;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base <= lastAddress(b) && b.base <= lastAddress(a);
}

/** How many blocks of prefix `blockPrefix` the pool holds. */
export function blockCount(pool: Cidr, blockPrefix: number): bigint {
  checkBlockPrefix(pool, blockPrefix);
  return 1n << BigInt(blockPrefix - pool.prefix);
}

/** The i-th block of the pool. */
export function blockAt(pool: Cidr, blockPrefix: number, index: bigint): Cidr {
  const count = blockCount(pool, blockPrefix);
  if (index < 0n || index >= count)
    throw new Error(`block index ${index} outside ${formatCidr(pool)} (${count} blocks)`);
  const size = 1n << BigInt(BITS[pool.family] - blockPrefix);
  return { family: pool.family, base: pool.base + index * size, prefix: blockPrefix };
}

/** Index of the block of the pool that contains the address, or undefined when outside the pool. */
export function blockIndexOf(
  pool: Cidr,
  blockPrefix: number,
  family: Family,
  value: bigint,
): bigint | undefined {
  checkBlockPrefix(pool, blockPrefix);
  if (!containsIP(pool, family, value)) return undefined;
  return (value - pool.base) >> BigInt(BITS[pool.family] - blockPrefix);
}

function checkBlockPrefix(pool: Cidr, blockPrefix: number): void {
  if (!Number.isInteger(blockPrefix) || blockPrefix < pool.prefix || blockPrefix > BITS[pool.family]) {
    throw new Error(
      `block size /${blockPrefix} does not fit pool ${formatCidr(pool)}: it must be between /${pool.prefix} and /${BITS[pool.family]}`,
    );
  }
}
