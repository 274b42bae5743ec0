// Wires a pod's network namespace to its node with a veth pair, routed (no bridge): the pod end
// gets /32 and /128 addresses and a default route via a link-local gateway whose MAC is fixed by
// a permanent neighbour entry; the node end gets a host route and a permanent neighbour entry per
// pod address. Two `ip -batch` runs per ADD: one inside the pod namespace (creates the pair and
// moves the node end out to the caller's namespace by pid), one in the node namespace; both in
// one shell script. See docs/datapath.md.
import { createHash } from 'node:crypto';
import { ipJsonBatch, isNoSuchDevice, type IpAddr, type IpRoute } from './ip.ts';
import { run } from './exec.ts';
import { shq } from './shell.ts';

/** MAC of every node-side veth: pods reach their gateway at this address (static neighbour). */
export const GATEWAY_MAC = 'ee:ee:ee:ee:ee:ee';
export const GATEWAY_V4 = '169.254.1.1';
export const GATEWAY_V6 = 'fe80::1';
/** Routing protocol number on the node's pod routes, so they are recognisably ours. */
export const POD_ROUTE_PROTO = 222;

export interface PodAddress {
  ip: string;
  family: 4 | 6;
}

export interface PodInterfaceSpec {
  netns: string;
  ifname: string;
  hostVeth: string;
  mtu: number;
  mac: string;
  addresses: PodAddress[];
}

/** Node-side veth name for one attachment: prefix + hash, at most 15 characters. */
export function hostVethName(prefix: string, containerID: string, ifname: string): string {
  const hash = createHash('sha1').update(`${containerID}/${ifname}`).digest('hex');
  return (prefix + hash).slice(0, 15);
}

/** Deterministic, locally administered unicast MAC for a pod interface (idempotent ADD). */
export function podMac(containerID: string, ifname: string): string {
  const h = createHash('sha1').update(`mac/${containerID}/${ifname}`).digest();
  const bytes = [0x0a, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The pod side of the pair, created inside the pod namespace; the node end moves to `hostPid`'s namespace. */
export function podSideCommands(spec: PodInterfaceSpec, hostPid: number): string[] {
  const { ifname, hostVeth, mtu, mac } = spec;
  const lines = [
    `link add ${ifname} address ${mac} mtu ${mtu} type veth peer name ${hostVeth} address ${GATEWAY_MAC} mtu ${mtu} netns ${hostPid}`,
    'link set lo up',
    `link set ${ifname} up`,
  ];
  for (const a of spec.addresses) {
    if (a.family === 4) {
      lines.push(
        `addr add ${a.ip}/32 dev ${ifname}`,
        `neigh replace ${GATEWAY_V4} lladdr ${GATEWAY_MAC} dev ${ifname} nud permanent`,
        `route add ${GATEWAY_V4}/32 dev ${ifname} scope link`,
        `route add default via ${GATEWAY_V4} dev ${ifname}`,
      );
    } else {
      lines.push(
        `addr add ${a.ip}/128 dev ${ifname} nodad`,
        `neigh replace ${GATEWAY_V6} lladdr ${GATEWAY_MAC} dev ${ifname} nud permanent`,
        `route add ::/0 via ${GATEWAY_V6} dev ${ifname}`,
      );
    }
  }
  return lines;
}

export function hostSideCommands(spec: PodInterfaceSpec): string[] {
  const lines = [`link set ${spec.hostVeth} up`];
  for (const a of spec.addresses) {
    const plen = a.family === 4 ? 32 : 128;
    lines.push(`route replace ${a.ip}/${plen} dev ${spec.hostVeth} scope link proto ${POD_ROUTE_PROTO}`);
    // The pod's MAC is ours to choose, so the node needs no ARP/NDP to reach it (and no wait
    // for IPv6 duplicate address detection on the fresh link).
    lines.push(`neigh replace ${a.ip} lladdr ${spec.mac} dev ${spec.hostVeth} nud permanent`);
  }
  return lines;
}

/** Runs data-plane scripts; the default spawns `sh` per call, the agent passes a ShellPool. */
export type ScriptRunner = (script: string) => Promise<string>;

export const spawnShell: ScriptRunner = (script) => run('sh', ['-c', script]);

/**
 * Creates and configures the pod interface; the caller removes a leftover pair first. Both
 * batches run in one shell script: no fork of the (large) agent process per ADD.
 */
export async function setupPodInterface(spec: PodInterfaceSpec, runScript: ScriptRunner = spawnShell): Promise<void> {
  const script = [
    'set -e',
    `nsenter --net=${shq(spec.netns)} -- ip -batch - <<'TRELLIS_POD'`,
    ...podSideCommands(spec, process.pid),
    'TRELLIS_POD',
    `ip -batch - <<'TRELLIS_HOST'`,
    ...hostSideCommands(spec),
    'TRELLIS_HOST',
  ].join('\n');
  await runScript(script);
}

/** Deletes the node end (the kernel removes the pod end and the host routes). False when absent. */
export async function deleteHostVeth(hostVeth: string, runScript: ScriptRunner = spawnShell): Promise<boolean> {
  try {
    await runScript(`ip link del ${shq(hostVeth)}`);
    return true;
  } catch (err: unknown) {
    if (isNoSuchDevice(err)) return false;
    throw err;
  }
}

export interface PodInterfaceState {
  link?: IpAddr;
  routes: IpRoute[];
}

/** Reads the pod interface, its addresses and its routes (both families) in one process. */
export async function readPodInterface(netns: string, ifname: string): Promise<PodInterfaceState> {
  const [addrs, routes] = await ipJsonBatch(['addr show', `route show table all dev ${ifname}`], { netns });
  const link = (addrs as IpAddr[]).find((l) => l.ifname === ifname);
  if (!link) return { routes: [] };
  // `table all` dumps both families; keep the main table (entries without a `table` field).
  return { link, routes: (routes as (IpRoute & { table?: string })[]).filter((r) => !r.table || r.table === 'main') };
}
