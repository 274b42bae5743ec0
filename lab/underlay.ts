// The lab's machines: an underlay bridge in the root netns, one netns per simulated node and one
// for the outside host, all on a /24 of their own. The root netns only bridges: it never forwards
// or routes lab traffic (ip_forward stays as it is) and no route toward a real network is added.
import { inNetns, linkExists, netnsExists, run, tryRun } from './sh.ts';
import { killPids } from '../src/util/process.ts';
import { underlayIPv6, type LabNode, type LabState } from './state.ts';

export function createBridge(s: LabState): void {
  if (linkExists(s.bridge)) {
    throw new Error(`link ${s.bridge} already exists; run \`trellis lab down\` (or pick another --prefix)`);
  }
  run(['ip', 'link', 'add', s.bridge, 'type', 'bridge']);
  run(['ip', 'addr', 'add', `${s.gateway}/24`, 'dev', s.bridge]);
  run(['ip', 'link', 'set', s.bridge, 'up']);
}

/** A netns with lo up and an eth0 on the underlay bridge. */
function createHost(s: LabState, netns: string, veth: string, ip: string): void {
  if (netnsExists(netns)) throw new Error(`netns ${netns} already exists; run \`trellis lab down\` first`);
  run(['ip', 'netns', 'add', netns]);
  run(inNetns(netns, ['ip', 'link', 'set', 'lo', 'up']));
  run(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  run(['ip', 'link', 'set', veth, 'master', s.bridge]);
  run(['ip', 'link', 'set', veth, 'up']);
  run(inNetns(netns, ['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']));
  // nodad: the address is usable at once (each lab host's is unique by construction)
  run(inNetns(netns, ['ip', '-6', 'addr', 'add', `${underlayIPv6(ip)}/64`, 'dev', 'eth0', 'nodad']));
  run(inNetns(netns, ['ip', 'link', 'set', 'eth0', 'up']));
}

export function createNode(s: LabState, node: LabNode): void {
  createHost(s, node.netns, node.veth, node.ip);
  // A Kubernetes node forwards (kubeadm's preflight insists); this is the node's netns, not the host's.
  run(inNetns(node.netns, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']));
  run(inNetns(node.netns, ['ip', 'route', 'add', 'default', 'via', s.outside.ip, 'dev', 'eth0']));
}

export function createOutside(s: LabState): void {
  // No default route: the outside host answers only the underlay, so a pod reaches it only when its
  // node masquerades (the outside has no route back to pod addresses).
  createHost(s, s.outside.netns, s.outside.veth, s.outside.ip);
}

/** Every netns whose name starts with the lab's prefix (nodes, outside host, pods). */
export function labNetns(prefix: string): string[] {
  return run(['ip', 'netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n && n.startsWith(`${prefix}-`));
}

/** Kills what runs inside the lab's namespaces, deletes them and the bridge. Idempotent. */
export function destroyUnderlay(prefix: string, bridge: string): string[] {
  const removed: string[] = [];
  for (const ns of labNetns(prefix)) {
    killPids(tryPids(ns));
    if (tryRun(['ip', 'netns', 'del', ns])) removed.push(`netns ${ns}`);
  }
  // veths die with their netns; the bridge is ours by name.
  for (const link of rootLinks(prefix)) if (tryRun(['ip', 'link', 'del', link])) removed.push(`link ${link}`);
  if (linkExists(bridge) && tryRun(['ip', 'link', 'del', bridge])) removed.push(`link ${bridge}`);
  return removed;
}

function tryPids(ns: string): number[] {
  try {
    return run(['ip', 'netns', 'pids', ns])
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((p) => p !== process.pid);
  } catch {
    return [];
  }
}

function rootLinks(prefix: string): string[] {
  const out = run(['ip', '-o', 'link', 'show']);
  return out
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
    .filter((n): n is string => !!n && n.startsWith(`${prefix}-`));
}
