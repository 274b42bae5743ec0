// Racks for `trellis lab up --racks R`: each rack is its own L2 segment (a bridge with no address in
// the root netns) and subnet 198.19.<r>.0/24, with a top-of-rack router netns running BIRD (eBGP,
// AS 65000+r) that peers with its rack's nodes and, over a spine bridge (198.19.0.0/24), with the
// other racks' routers. Nodes keep eth0 on the lab underlay for the API server and the outside host
// (management), and get rk0 on their rack; their InternalIP is the rack address, so pod routes
// (host-gw or BGP) use the racks. Nothing here routes in the root netns.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BgpSpec } from '../src/api/clusternetwork.ts';
import { renderTorConfig } from '../src/routing/index.ts';
import { inNetns, run } from './sh.ts';
import { startDetached } from './spawn.ts';
import type { LabNode, LabRack, LabState } from './state.ts';

export const CLUSTER_AS = 64512;
const SPINE = '198.19.0';

/** Assigns nodes to racks in contiguous groups (node1, node2 -> rack1 ...); pure. */
export function planRacks(state: LabState, racks: number): void {
  if (!Number.isInteger(racks) || racks < 1 || racks > 8)
    throw new Error(`--racks must be a whole number from 1 to 8, got ${racks}`);
  if (state.nodes.length < racks)
    throw new Error(`--racks ${racks} needs at least ${racks} nodes, got --nodes ${state.nodes.length}`);
  const per = Math.ceil(state.nodes.length / racks);
  state.racks = [];
  for (let r = 1; r <= racks; r++) {
    state.racks.push({
      name: `rack${r}`,
      bridge: `${state.prefix}-rk${r}`,
      subnet: `198.19.${r}`,
      netns: `${state.prefix}-tor${r}`,
      ip: `198.19.${r}.1`,
      spineIP: `${SPINE}.${r}`,
      asNumber: 65000 + r,
    });
  }
  state.nodes.forEach((n, i) => {
    const r = Math.floor(i / per) + 1;
    n.rack = `rack${r}`;
    n.rackIP = `198.19.${r}.${11 + (i % per)}`;
  });
}

/** The node's address on its rack, else on the underlay: what the Node object reports as InternalIP. */
export function internalIP(node: LabNode): string {
  return node.rackIP ?? node.ip;
}

/** backend.bgp for the lab: each rack's nodes peer with their router; one segment uses the iBGP mesh. */
export function labBgpSpec(state: LabState): BgpSpec {
  if (!state.racks?.length) return { asNumber: CLUSTER_AS, nodeToNodeMesh: true };
  return {
    asNumber: CLUSTER_AS,
    nodeToNodeMesh: false,
    peers: state.racks.map((r) => ({
      address: r.ip,
      asNumber: r.asNumber,
      nodeSelector: { matchLabels: { 'lab.trellis.dev/rack': r.name } },
    })),
  };
}

/** Neighbor address -> TCP MD5 password a router requires (none by default). */
export type TorPasswords = ReadonlyMap<string, string>;

function torConfig(state: LabState, rack: LabRack, passwords: TorPasswords = new Map()): string {
  return renderTorConfig({
    name: rack.name,
    routerId: rack.ip,
    asNumber: rack.asNumber,
    neighbors: [
      ...state.nodes
        .filter((n) => n.rack === rack.name)
        .map((n) => ({
          address: n.rackIP!,
          asNumber: CLUSTER_AS,
          description: `node ${n.name}`,
          ...(passwords.has(n.rackIP!) ? { password: passwords.get(n.rackIP!)! } : {}),
        })),
      ...state
        .racks!.filter((o) => o.name !== rack.name)
        .map((o) => ({ address: o.spineIP, asNumber: o.asNumber, description: `router of ${o.name}` })),
    ],
  });
}

function bridge(name: string): void {
  run(['ip', 'link', 'add', name, 'type', 'bridge']);
  run(['ip', 'link', 'set', name, 'up']);
}

/** A veth from netns (as `ifname`, with `cidr`) to a root-netns bridge. */
function plug(netns: string, rootEnd: string, ifname: string, cidr: string, br: string): void {
  run(['ip', 'link', 'add', rootEnd, 'type', 'veth', 'peer', 'name', ifname, 'netns', netns]);
  run(['ip', 'link', 'set', rootEnd, 'master', br]);
  run(['ip', 'link', 'set', rootEnd, 'up']);
  run(inNetns(netns, ['ip', 'addr', 'add', cidr, 'dev', ifname]));
  run(inNetns(netns, ['ip', 'link', 'set', ifname, 'up']));
}

/** Creates the spine, the rack bridges, the routers (with BIRD running) and each node's rk0. */
export function createRacks(state: LabState): void {
  const racks = state.racks ?? [];
  if (!racks.length) return;
  const spine = `${state.prefix}-sp`;
  bridge(spine);
  for (const rack of racks) {
    bridge(rack.bridge);
    run(['ip', 'netns', 'add', rack.netns]);
    run(inNetns(rack.netns, ['ip', 'link', 'set', 'lo', 'up']));
    run(inNetns(rack.netns, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']));
    plug(rack.netns, `${state.prefix}-t${rack.name.slice(4)}r`, 'rack0', `${rack.ip}/24`, rack.bridge);
    plug(rack.netns, `${state.prefix}-t${rack.name.slice(4)}s`, 'spine0', `${rack.spineIP}/24`, spine);
  }
  state.nodes.forEach((n, i) => {
    const rack = racks.find((r) => r.name === n.rack);
    if (!rack) return;
    plug(n.netns, `${state.prefix}-k${i + 1}`, 'rk0', `${n.rackIP}/24`, rack.bridge);
  });
  for (const rack of racks) startTor(state, rack);
}

/** Runs (or re-runs) a router's BIRD with its rendered configuration; `lab down` kills it with its netns. */
export function startTor(state: LabState, rack: LabRack): void {
  const dir = join(state.stateDir, 'racks', rack.name);
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'bird.conf');
  writeFileSync(conf, torConfig(state, rack));
  startDetached(state.stateDir, {
    name: `tor-${rack.name}`,
    cmd: inNetns(rack.netns, [
      'bird',
      '-f',
      '-c',
      conf,
      '-s',
      torSocket(state, rack),
      '-P',
      join(dir, 'bird.pid'),
    ]),
    logFile: join(dir, 'bird.log'),
    marker: conf,
  });
}

/** Rewrites a running router's configuration (e.g. to require passwords) and reloads it in place. */
export function configureTor(state: LabState, rack: LabRack, passwords: TorPasswords): void {
  const conf = join(state.stateDir, 'racks', rack.name, 'bird.conf');
  writeFileSync(conf, torConfig(state, rack, passwords), { mode: 0o600 });
  run(['birdc', '-s', torSocket(state, rack), 'configure']);
}

export function torSocket(state: LabState, rack: LabRack): string {
  return join(state.stateDir, 'racks', rack.name, 'bird.ctl');
}
