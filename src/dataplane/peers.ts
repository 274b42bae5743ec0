// Routes to other nodes' pod blocks, for both backends, programmed by difference: read what is
// there (our routes carry PEER_ROUTE_PROTO, our FDB/neighbour entries live on our vxlan device),
// add or replace what is missing, delete only what is no longer wanted. Nothing is flushed, so an
// agent restart never interrupts traffic to routes it can recompute.
import { bridgeBatch, fdbShow, ipBatch, ipJsonBatch, type IpLink, type IpNeigh, type IpRoute } from './ip.ts';
import { run, runResult } from './exec.ts';

/** Routing protocol number on block routes (ours, not the kernel's or another daemon's). */
export const PEER_ROUTE_PROTO = 221;

export interface PeerNode {
  name: string;
  /** Underlay address (Node InternalIP). */
  nodeIP: string;
  /** IPv6 underlay address, used by host-gw for IPv6 blocks. */
  nodeIPv6?: string;
  /** VXLAN device MAC of the peer (vxlan only). */
  vtepMAC?: string;
  blocks: string[];
}

export interface PeerPlan {
  /** Blocks of this node: blackhole routes so unassigned addresses do not loop. */
  ownBlocks: string[];
  peers: PeerNode[];
}

export interface VxlanDevice {
  name: string;
  vni: number;
  port: number;
  localIP: string;
  mtu: number;
  mac: string;
}

/** IPv6 link-local address derived from a MAC (EUI-64), used as the next hop of IPv6 block routes. */
export function linkLocalFromMac(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  b[0] = b[0]! ^ 0x02;
  const words = [(b[0] << 8) | b[1]!, (b[2]! << 8) | 0xff, (0xfe << 8) | b[3]!, (b[4]! << 8) | b[5]!];
  return `fe80::${words.map((w) => w.toString(16)).join(':')}`;
}

/** A stable MAC for our vxlan device, derived from the node IP, so restarts keep peers' entries valid. */
export function vtepMacFor(nodeIP: string): string {
  const parts = nodeIP.includes(':') ? [0, 0, 0, 0] : nodeIP.split('.').map(Number);
  return ['0e', '7e', ...parts.map((p) => p.toString(16).padStart(2, '0'))].join(':');
}

interface VxlanInfo {
  id?: number;
  port?: number;
  local?: string;
  learning?: boolean;
}

/** Creates the vxlan device or keeps an existing one that already matches; returns its MAC. */
export async function ensureVxlanDevice(dev: VxlanDevice): Promise<string> {
  const found = await runResult('ip', ['-j', '-d', 'link', 'show', 'dev', dev.name]);
  const cur = found.code === 0 ? (JSON.parse(found.stdout) as IpLink[])[0] : undefined;
  const info = cur?.linkinfo?.info_data as VxlanInfo | undefined;
  const matches =
    cur &&
    cur.linkinfo?.info_kind === 'vxlan' &&
    info?.id === dev.vni &&
    info.port === dev.port &&
    info.local === dev.localIP &&
    info.learning === false;
  const lines: string[] = [];
  if (cur && !matches) lines.push(`link del ${dev.name}`);
  if (!matches) {
    lines.push(
      `link add ${dev.name} address ${dev.mac} mtu ${dev.mtu} type vxlan id ${dev.vni} dstport ${dev.port} local ${dev.localIP} nolearning`,
    );
  } else if (cur.mtu !== dev.mtu) {
    lines.push(`link set ${dev.name} mtu ${dev.mtu}`);
  }
  lines.push(`link set ${dev.name} up`);
  await ipBatch(lines);
  return matches && cur.address ? cur.address : dev.mac;
}

export async function deleteLink(name: string): Promise<void> {
  await run('ip', ['link', 'del', name]).catch(() => undefined);
}

interface DesiredRoute {
  dst: string;
  line: string;
}

function normDst(dst: string): string {
  if (dst === 'default') return dst;
  if (dst.includes('/')) return dst;
  return dst.includes(':') ? `${dst}/128` : `${dst}/32`;
}

function blackholes(plan: PeerPlan): DesiredRoute[] {
  return plan.ownBlocks.map((b) => ({
    dst: b,
    line: `route replace blackhole ${b} proto ${PEER_ROUTE_PROTO}`,
  }));
}

/** Reads our block routes (both families, main table). */
async function currentPeerRoutes(): Promise<IpRoute[]> {
  const [routes] = await ipJsonBatch([`route show table all proto ${PEER_ROUTE_PROTO}`]);
  return (routes as (IpRoute & { table?: string })[]).filter((r) => !r.table || r.table === 'main');
}

async function syncRoutes(desired: DesiredRoute[]): Promise<number> {
  const want = new Map(desired.map((d) => [d.dst, d.line]));
  const lines: string[] = [...want.values()];
  for (const r of await currentPeerRoutes()) {
    const dst = normDst(r.dst);
    if (!want.has(dst))
      lines.push(`route del ${r.type === 'blackhole' ? 'blackhole ' : ''}${dst} proto ${PEER_ROUTE_PROTO}`);
  }
  await ipBatch(lines);
  return want.size;
}

/** A route of the BGP speaker's kernel table, as `ip -j route show` prints it. */
export interface SpeakerRoute extends IpRoute {
  table?: string;
  nexthops?: { gateway?: string; dev?: string; weight?: number; flags?: string[] }[];
}

/**
 * The main-table copy of one route the BGP speaker installed in its own table: same destination
 * and next hop(s), with our protocol number. Only unicast routes are copied (the speaker's import
 * filter admits nothing else); undefined for anything else.
 */
export function mirrorRoute(r: SpeakerRoute): DesiredRoute | undefined {
  if (r.type && r.type !== 'unicast') return undefined;
  const dst = normDst(r.dst);
  if (dst === 'default') return undefined;
  const hop = (h: { gateway?: string; dev?: string; flags?: string[] }): string =>
    [
      h.gateway ? `via ${h.gateway}` : '',
      h.dev ? `dev ${h.dev}` : '',
      h.flags?.includes('onlink') ? 'onlink' : '',
    ]
      .filter(Boolean)
      .join(' ');
  if (r.nexthops?.length) {
    const hops = r.nexthops.map((h) => `nexthop ${hop(h)}${h.weight ? ` weight ${h.weight}` : ''}`);
    return { dst, line: `route replace ${dst} proto ${PEER_ROUTE_PROTO} ${hops.join(' ')}` };
  }
  if (!r.gateway && !r.dev) return undefined;
  return { dst, line: `route replace ${dst} ${hop(r)} proto ${PEER_ROUTE_PROTO}` };
}

/** Reads the routes the BGP speaker installed in `table` (both families). */
export async function readSpeakerRoutes(table: number): Promise<SpeakerRoute[]> {
  // `table all` keeps both families in one dump; a numbered table would list IPv4 only.
  const [routes] = await ipJsonBatch(['route show table all']);
  return (routes as SpeakerRoute[]).filter((r) => r.table === String(table));
}

/**
 * bgp: blackholes for our blocks, and a main-table copy (our protocol number) of every route the
 * speaker learned into its own table. Returns the number of learned routes installed.
 */
export async function syncBgp(ownBlocks: string[], learned: SpeakerRoute[]): Promise<number> {
  const own = new Set(ownBlocks.map(normDst));
  const copies = learned.flatMap((r) => {
    const d = mirrorRoute(r);
    return d && !own.has(d.dst) ? [d] : [];
  });
  await syncRoutes([...blackholes({ ownBlocks, peers: [] }), ...copies]);
  return copies.length;
}

/** host-gw: each peer block routed via the peer's node address (same L2 segment). */
export async function syncHostGw(plan: PeerPlan): Promise<number> {
  const desired = blackholes(plan);
  for (const p of plan.peers) {
    for (const b of p.blocks) {
      const gw = b.includes(':') ? p.nodeIPv6 : p.nodeIP.includes(':') ? undefined : p.nodeIP;
      if (gw) desired.push({ dst: b, line: `route replace ${b} via ${gw} proto ${PEER_ROUTE_PROTO}` });
    }
  }
  await syncRoutes(desired);
  return plan.peers.length;
}

/**
 * vxlan: per peer a static FDB entry (peer vtep MAC -> peer node IP), permanent neighbour entries
 * for the next hops (the peer node IP for IPv4 blocks, a link-local derived from its MAC for
 * IPv6 blocks), and block routes via those next hops `onlink` on our device. No learning, no
 * flooding, no multicast: the kernel never has to guess where a MAC lives.
 */
export async function syncVxlan(dev: string, plan: PeerPlan): Promise<number> {
  const peers = plan.peers.filter((p) => p.vtepMAC);
  const desired = blackholes(plan);
  const fdbWant = new Map<string, string>();
  const neighWant = new Map<string, string>();
  for (const p of peers) {
    const mac = p.vtepMAC!.toLowerCase();
    fdbWant.set(mac, p.nodeIP);
    const ll = linkLocalFromMac(mac);
    neighWant.set(p.nodeIP, mac);
    for (const b of p.blocks) {
      const via = b.includes(':') ? ll : p.nodeIP;
      if (b.includes(':')) neighWant.set(ll, mac);
      desired.push({
        dst: b,
        line: `route replace ${b} via ${via} dev ${dev} onlink proto ${PEER_ROUTE_PROTO}`,
      });
    }
  }

  const fdbLines: string[] = [];
  const fdb = await fdbShow(dev);
  for (const e of fdb) {
    if (!e.dst) continue;
    const want = fdbWant.get(e.mac.toLowerCase());
    if (want !== e.dst) fdbLines.push(`fdb del ${e.mac} dev ${dev} dst ${e.dst} self`);
  }
  for (const [mac, ip] of fdbWant) fdbLines.push(`fdb replace ${mac} dev ${dev} dst ${ip} self permanent`);

  const neighLines: string[] = [];
  const [neighs] = await ipJsonBatch([`neigh show dev ${dev}`]);
  for (const n of neighs as IpNeigh[]) {
    if (!neighWant.has(n.dst) && n.state?.includes('PERMANENT'))
      neighLines.push(`neigh del ${n.dst} dev ${dev}`);
  }
  for (const [ip, mac] of neighWant)
    neighLines.push(`neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`);

  // Deletions of stale entries must not fail the batch when an entry vanished meanwhile.
  await bridgeBatch(fdbLines);
  await ipBatch(neighLines);
  await syncRoutes(desired);
  return peers.length;
}
