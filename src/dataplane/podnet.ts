// Wires a pod's network namespace to its node with a veth pair, routed (no bridge): the pod end
// gets /32 and /128 addresses and a default route via a link-local gateway whose MAC is fixed by
// a permanent neighbour entry; the node end gets a host route and a permanent neighbour entry per
// pod address. An ADD is two steps: the link (needs no address, overlaps the IPAM write), created
// from the node's namespace with its pod end placed and named in the pod's namespace; then
// addresses and routes, both namespaces at once. Node-side lines go to the node's long-lived
// `ip -batch` session (ip-session.ts: no process start); the pod side is one `ip -batch -` run in
// the pod's namespace. Argv and stdin only, never a shell. See docs/datapath.md.
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { ipBatch, ipJsonBatch, isNoSuchDevice, type IpAddr, type IpRoute } from './ip.ts';
import { run } from './exec.ts';
import { rootIp } from './ip-session.ts';

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

/**
 * Node side, step 1 (needs no address): the pair, its pod end created in the pod's namespace
 * (`netns` names it by path, `nsRef`) under its final name, the node end up.
 */
export function linkCommands(spec: Omit<PodInterfaceSpec, 'addresses'>, nsRef: string): string[] {
  const { ifname, hostVeth, mtu, mac } = spec;
  return [
    `link add name ${hostVeth} address ${GATEWAY_MAC} mtu ${mtu} type veth peer name ${ifname} address ${mac} mtu ${mtu} netns ${nsRef}`,
    `link set dev ${hostVeth} up`,
  ];
}

/** Pod side, step 2: loopback and the link up, /32 and /128 addresses, the gateway's permanent neighbour entries, default routes. */
export function podAddressCommands(spec: PodInterfaceSpec): string[] {
  const { ifname } = spec;
  const lines: string[] = ['link set lo up', `link set dev ${ifname} up`];
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

/** Node side, step 2: a host route and a permanent neighbour entry per pod address. */
export function hostSideCommands(spec: PodInterfaceSpec): string[] {
  const lines: string[] = [];
  for (const a of spec.addresses) {
    const plen = a.family === 4 ? 32 : 128;
    lines.push(`route replace ${a.ip}/${plen} dev ${spec.hostVeth} scope link proto ${POD_ROUTE_PROTO}`);
    // The pod's MAC is ours to choose, so the node needs no ARP/NDP to reach it (and no wait
    // for IPv6 duplicate address detection on the fresh link).
    lines.push(`neigh replace ${a.ip} lladdr ${spec.mac} dev ${spec.hostVeth} nud permanent`);
  }
  return lines;
}

/** A batch line splits on blanks and ends at '#'; paths it cannot carry as they are go by descriptor. */
const BATCH_SAFE = /^[^\s"'\\#]+$/;

/**
 * Step 1 of an ADD, which needs no address and so runs while IPAM is still writing to the API
 * server: the veth pair exists and its node end is up afterwards (the pod end comes up in step
 * 2). The caller checks first that the pair does not exist. Every value in the lines was
 * validated at the CNI edge (src/cni/validate.ts) or computed here, and no shell reads them.
 */
export async function createPodLink(spec: Omit<PodInterfaceSpec, 'addresses'>): Promise<void> {
  if (BATCH_SAFE.test(spec.netns)) {
    await rootIp().run(linkCommands(spec, spec.netns), { holdsNamespace: true });
    return;
  }
  // `ip` opens the namespace by path; our own descriptor of it is a path without blanks.
  const fd = openSync(spec.netns, 'r');
  try {
    await rootIp().run(linkCommands(spec, `/proc/${process.pid}/fd/${fd}`), { holdsNamespace: true });
  } finally {
    closeSync(fd);
  }
}

/**
 * Step 2 of an ADD, the part after IPAM answered: addresses and routes on both ends, the pod side
 * and the node side at the same time (they touch different namespaces, so their order does not
 * matter). Both are always awaited, so nothing outlives a failure.
 */
export async function addressPodLink(spec: PodInterfaceSpec): Promise<void> {
  const results = await Promise.allSettled([
    ipBatch(podAddressCommands(spec), { netns: spec.netns }),
    rootIp().run(hostSideCommands(spec)),
  ]);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

/** Deletes the node end (the kernel removes the pod end and the host routes). False when absent. */
export async function deleteHostVeth(hostVeth: string): Promise<boolean> {
  try {
    await run('ip', ['link', 'del', 'dev', hostVeth]);
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
  return {
    link,
    routes: (routes as (IpRoute & { table?: string })[]).filter((r) => !r.table || r.table === 'main'),
  };
}
