// The policy model -> one node's nftables ruleset, as data (sets, maps, chains) that renders to a
// whole-table script (start-up, restart: one atomic replacement) or diffs against the previous
// ruleset into an incremental script (a change: only what changed, never a flush of the table).
//
// Shape, per node (only pods on this node get verdicts):
//   base chains `egress` and `ingress` on the forward hook: established/related accepted, then
//   `ip saddr vmap @egress4` / `ip daddr vmap @ingress4` (and ip6) jump to the chain of the pod's
//   policy combination (one chain per distinct set of selecting policies, not per pod), which
//   jumps to each policy's chain and drops what none accepted. A policy chain holds its rules;
//   peers are named sets shared by every rule with the same selector or ipBlock; named ports are
//   one set per port name of (address . protocol . port), so each destination pod resolves the name
//   to its own number. Pod churn therefore edits set and map elements only.
// Traffic between a node and its own pods never crosses the forward hook, so it is always allowed.
import { createHash } from 'node:crypto';
import { formatIP, parseCidr, type Family } from '../ipam/cidr.ts';
import { isolating, selectorPeerMatches } from './match.ts';
import type { Direction, Peer, Policy, PolicyModel, PortMatch, Rule } from './types.ts';

export const POLICY_TABLE = 'trellis-policy';

export interface NftSet {
  /** e.g. `ipv4_addr`, `ipv4_addr . inet_proto . inet_service`, or `ipv4_addr : verdict` (a map). */
  type: string;
  interval: boolean;
  /** Element texts (for maps `key : verdict`). */
  elements: Set<string>;
}

export interface Ruleset {
  table: string;
  sets: Map<string, NftSet>;
  /** Chain name -> its rules; base chains carry their `type ... hook` line first. */
  chains: Map<string, string[]>;
}

export interface CompileStats {
  policies: number;
  chains: number;
  rules: number;
  sets: number;
  elements: number;
}

const DIR_SHORT: Record<Direction, string> = { ingress: 'in', egress: 'out' };
const ADDR: Record<Family, string> = { 4: 'ip', 6: 'ip6' };
const ADDR_TYPE: Record<Family, string> = { 4: 'ipv4_addr', 6: 'ipv6_addr' };

function h(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 12);
}

function familyOf(ip: string): Family {
  return ip.includes(':') ? 6 : 4;
}

/** cidr minus its excepts, as disjoint address ranges. */
export function blockRanges(peer: Extract<Peer, { kind: 'cidr' }>): {
  family: Family;
  ranges: [bigint, bigint][];
} {
  const c = parseCidr(peer.cidr);
  const bits = c.family === 4 ? 32 : 128;
  let ranges: [bigint, bigint][] = [[c.base, c.base + (1n << BigInt(bits - c.prefix)) - 1n]];
  for (const e of peer.except) {
    const x = parseCidr(e);
    const lo = x.base;
    const hi = x.base + (1n << BigInt(bits - x.prefix)) - 1n;
    ranges = ranges.flatMap(([a, b]): [bigint, bigint][] => {
      if (hi < a || lo > b) return [[a, b]];
      const out: [bigint, bigint][] = [];
      if (lo > a) out.push([a, lo - 1n]);
      if (hi < b) out.push([hi + 1n, b]);
      return out;
    });
  }
  return { family: c.family, ranges };
}

class Builder {
  readonly sets = new Map<string, NftSet>();
  readonly chains = new Map<string, string[]>();
  readonly families: Family[];
  private readonly peerSets = new Map<string, string>();
  private readonly named = new Set<string>();

  readonly model: PolicyModel;

  constructor(model: PolicyModel, families: Family[]) {
    this.model = model;
    this.families = families;
  }

  set(name: string, type: string, interval: boolean): NftSet {
    let s = this.sets.get(name);
    if (!s) {
      s = { type, interval, elements: new Set() };
      this.sets.set(name, s);
    }
    return s;
  }

  /** The set name (without family suffix) of pods matched by a selector peer. */
  selectorSet(peer: Extract<Peer, { kind: 'selector' }>, policyNs: string): string {
    const key = `${peer.namespaces ? `ns:${peer.namespaces.text}` : `in:${policyNs}`}|${peer.pods?.text ?? '*'}`;
    let name = this.peerSets.get(key);
    if (name) return name;
    name = `p-${h(key)}`;
    this.peerSets.set(key, name);
    for (const f of this.families) this.set(`${name}-${f}`, ADDR_TYPE[f], false);
    for (const ep of this.model.endpoints) {
      if (!selectorPeerMatches(peer, policyNs, ep, this.model.namespaces)) continue;
      for (const a of ep.addresses) this.sets.get(`${name}-${familyOf(a)}`)?.elements.add(a);
    }
    return name;
  }

  blockSet(peer: Extract<Peer, { kind: 'cidr' }>): { name: string; family: Family } {
    const { family, ranges } = blockRanges(peer);
    const name = `b-${h(`${peer.cidr}|${peer.except.join(',')}`)}-${family}`;
    if (!this.sets.has(name)) {
      const s = this.set(name, ADDR_TYPE[family], true);
      for (const [a, b] of ranges)
        s.elements.add(a === b ? formatIP(family, a) : `${formatIP(family, a)}-${formatIP(family, b)}`);
    }
    return { name, family };
  }

  /** One set per port name: (address . protocol . port) of every endpoint declaring it. */
  namedSet(portName: string, f: Family): string {
    const name = `n-${h(portName)}-${f}`;
    if (!this.named.has(name)) {
      this.named.add(name);
      const s = this.set(name, `${ADDR_TYPE[f]} . inet_proto . inet_service`, false);
      for (const ep of this.model.endpoints)
        for (const p of ep.ports)
          if (p.name === portName)
            for (const a of ep.addresses)
              if (familyOf(a) === f) s.elements.add(`${a} . ${p.protocol.toLowerCase()} . ${p.port}`);
    }
    return name;
  }

  /** nft rule texts for one policy rule: peers x port groups, each family where it applies. */
  rule(policy: Policy, dir: Direction, rule: Rule, index: number): string[] {
    const remote = dir === 'ingress' ? 'saddr' : 'daddr';
    // peer alternatives: [family or undefined for both, match text]
    const peers: [Family | undefined, string][] = [];
    if (rule.peers === undefined) peers.push([undefined, '']);
    else
      for (const peer of rule.peers) {
        if (peer.kind === 'cidr') {
          const b = this.blockSet(peer);
          peers.push([b.family, `${ADDR[b.family]} ${remote} @${b.name}`]);
        } else {
          const s = this.selectorSet(peer, policy.namespace);
          for (const f of this.families) peers.push([f, `${ADDR[f]} ${remote} @${s}-${f}`]);
        }
      }
    const ports: [Family | undefined, string][] = [];
    if (rule.ports === undefined) ports.push([undefined, '']);
    else {
      const numeric = new Map<string, string[]>();
      for (const pm of rule.ports) {
        const proto = pm.protocol.toLowerCase();
        if (typeof pm.port === 'string') {
          for (const f of this.families)
            ports.push([
              f,
              `meta l4proto ${proto} ${ADDR[f]} daddr . meta l4proto . th dport @${this.namedSet(pm.port, f)}`,
            ]);
          continue;
        }
        const list = numeric.get(proto) ?? [];
        numeric.set(proto, list);
        if (pm.port === undefined) list.push('*');
        else list.push(pm.endPort && pm.endPort !== pm.port ? `${pm.port}-${pm.endPort}` : String(pm.port));
      }
      for (const [proto, list] of numeric) {
        if (list.includes('*')) ports.push([undefined, `meta l4proto ${proto}`]);
        else ports.push([undefined, `meta l4proto ${proto} th dport { ${[...new Set(list)].join(', ')} }`]);
      }
    }
    const comment = `comment "${policy.key} ${dir}[${index}]"`;
    const out: string[] = [];
    for (const [pf, pm] of peers)
      for (const [qf, qm] of ports) {
        if (pf && qf && pf !== qf) continue;
        out.push([pm, qm, 'accept', comment].filter(Boolean).join(' '));
      }
    return out;
  }

  policyChain(policy: Policy, dir: Direction): string {
    const name = `${DIR_SHORT[dir]}-${h(policy.key)}`;
    if (!this.chains.has(name))
      this.chains.set(
        name,
        policy[dir]!.flatMap((r, i) => this.rule(policy, dir, r, i)),
      );
    return name;
  }

  comboChain(policies: Policy[], dir: Direction): string {
    const name = `${DIR_SHORT[dir]}-all-${h(policies.map((p) => p.key).join('\n'))}`;
    if (!this.chains.has(name))
      this.chains.set(name, [...policies.map((p) => `jump ${this.policyChain(p, dir)}`), 'drop']);
    return name;
  }
}

/** The families any endpoint has an address in (sets are made for these only). */
export function familiesOf(model: PolicyModel): Family[] {
  const fams = new Set<Family>();
  for (const ep of model.endpoints) for (const a of ep.addresses) fams.add(familyOf(a));
  return ([4, 6] as Family[]).filter((f) => fams.has(f));
}

/** Compiles the ruleset for the pods on `node`. */
export function compile(model: PolicyModel, node: string, table = POLICY_TABLE): Ruleset {
  const b = new Builder(model, familiesOf(model));
  for (const dir of ['egress', 'ingress'] as const)
    for (const f of [4, 6] as Family[]) b.set(`${dir}${f}`, `${ADDR_TYPE[f]} : verdict`, false);
  for (const ep of model.endpoints) {
    if (ep.node !== node || ep.addresses.length === 0) continue;
    for (const dir of ['egress', 'ingress'] as const) {
      const pols = isolating(model.policies, ep, dir);
      if (pols.length === 0) continue;
      const chain = b.comboChain(pols, dir);
      for (const a of ep.addresses) b.sets.get(`${dir}${familyOf(a)}`)!.elements.add(`${a} : jump ${chain}`);
    }
  }
  // egress is judged first; accept in one base chain passes the packet on to the next
  b.chains.set('egress', [
    'type filter hook forward priority filter - 10; policy accept;',
    'ct state established,related accept',
    'ip saddr vmap @egress4',
    'ip6 saddr vmap @egress6',
  ]);
  b.chains.set('ingress', [
    'type filter hook forward priority filter - 9; policy accept;',
    'ct state established,related accept',
    'ip daddr vmap @ingress4',
    'ip6 daddr vmap @ingress6',
  ]);
  return { table, sets: b.sets, chains: b.chains };
}

export function stats(rs: Ruleset, policies: number): CompileStats {
  let rules = 0;
  for (const r of rs.chains.values()) rules += r.length;
  let elements = 0;
  for (const s of rs.sets.values()) elements += s.elements.size;
  return { policies, chains: rs.chains.size, rules, sets: rs.sets.size, elements };
}

const isBase = (rule: string | undefined): boolean => !!rule?.startsWith('type ');

function setDecl(s: NftSet): string {
  return `type ${s.type};${s.interval ? ' flags interval;' : ''}`;
}

/** Chains in an order where every jump target is defined before the chain that jumps. */
function chainOrder(rs: Ruleset): string[] {
  const names = [...rs.chains.keys()];
  const rank = (n: string) => (isBase(rs.chains.get(n)?.[0]) ? 2 : n.includes('-all-') ? 1 : 0);
  return names.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** The whole table as one script that replaces any previous version atomically. */
export function renderFull(rs: Ruleset): string {
  const t = `inet ${rs.table}`;
  const lines = [`table ${t} {}`, `delete table ${t}`, `table ${t} {`];
  const maps = [...rs.sets].filter(([, s]) => s.type.includes(': verdict'));
  const plain = [...rs.sets].filter(([, s]) => !s.type.includes(': verdict'));
  for (const [name, s] of plain) {
    const els = s.elements.size ? ` elements = { ${[...s.elements].join(', ')} }` : '';
    lines.push(`  set ${name} { ${setDecl(s)}${els} }`);
  }
  const order = chainOrder(rs);
  // non-base chains first (maps refer to them), then maps, then the base chains that use the maps
  for (const name of order.filter((n) => !isBase(rs.chains.get(n)?.[0])))
    lines.push(`  chain ${name} {`, ...rs.chains.get(name)!.map((r) => `    ${r}`), '  }');
  for (const [name, s] of maps) {
    const els = s.elements.size ? ` elements = { ${[...s.elements].join(', ')} }` : '';
    lines.push(`  map ${name} { ${setDecl(s)}${els} }`);
  }
  for (const name of order.filter((n) => isBase(rs.chains.get(n)?.[0])))
    lines.push(`  chain ${name} {`, ...rs.chains.get(name)!.map((r) => `    ${r}`), '  }');
  lines.push('}', '');
  return lines.join('\n');
}

const keyOf = (el: string, map: boolean): string => (map ? el.slice(0, el.indexOf(' : ')) : el);

/**
 * The incremental script from `prev` to `next` (both of the same table), or '' when equal. One
 * transaction: new sets and chains first, then changed chains' rules, element removals and
 * additions, and last the chains and sets nothing refers to any more.
 */
export function renderDiff(prev: Ruleset, next: Ruleset): string {
  const t = `inet ${next.table}`;
  const head: string[] = [];
  const rules: string[] = [];
  const dels: string[] = [];
  const adds: string[] = [];
  const tail: string[] = [];
  for (const [name, s] of next.sets) {
    const old = prev.sets.get(name);
    const map = s.type.includes(': verdict');
    if (!old || old.type !== s.type || old.interval !== s.interval) {
      if (old) throw new Error(`set ${name} changed type; a full replacement is needed`);
      head.push(`add ${map ? 'map' : 'set'} ${t} ${name} { ${setDecl(s)} }`);
    }
    const removed: string[] = [];
    const added: string[] = [];
    if (old) for (const e of old.elements) if (!s.elements.has(e)) removed.push(keyOf(e, map));
    for (const e of s.elements) if (!old?.elements.has(e)) added.push(e);
    if (removed.length) dels.push(`delete element ${t} ${name} { ${removed.join(', ')} }`);
    if (added.length) adds.push(`add element ${t} ${name} { ${added.join(', ')} }`);
  }
  for (const name of chainOrder(next)) {
    const r = next.chains.get(name)!;
    const old = prev.chains.get(name);
    if (old && old.length === r.length && old.every((x, i) => x === r[i])) continue;
    if (isBase(r[0])) throw new Error(`base chain ${name} changed; a full replacement is needed`);
    if (!old) head.push(`add chain ${t} ${name}`);
    else rules.push(`flush chain ${t} ${name}`);
    for (const x of r) rules.push(`add rule ${t} ${name} ${x}`);
  }
  const gone = [...prev.chains.keys()].filter((n) => !next.chains.has(n));
  for (const name of gone) tail.push(`flush chain ${t} ${name}`);
  for (const name of gone) tail.push(`delete chain ${t} ${name}`);
  for (const [name, s] of prev.sets)
    if (!next.sets.has(name))
      tail.push(`delete ${s.type.includes(': verdict') ? 'map' : 'set'} ${t} ${name}`);
  const all = [...head, ...rules, ...dels, ...adds, ...tail];
  return all.length ? `${all.join('\n')}\n` : '';
}

export type { PortMatch };
