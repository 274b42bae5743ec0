// BIRD 2 configuration for one node, as data then text. Everything that reaches the config file is
// validated here first (addresses and CIDRs re-formatted canonically, AS numbers range-checked,
// session names derived from addresses, passwords restricted to printable ASCII without quotes),
// so no API value can change the file's structure. Output is deterministic: sessions sorted by name,
// blocks sorted, so an unchanged input never triggers a reload.
import type { BgpPeer, BgpSpec } from '../api/clusternetwork.ts';
import { canonicalIP, formatCidr, parseCidr, parseIP } from '../ipam/cidr.ts';
import { renderText } from '../render/templates.ts';
import { matchesSelector, type Labels } from '../selector/index.ts';

/**
 * Kernel routing table the speaker installs learned routes into. Nothing routes from it: the agent
 * copies it into main with our protocol number (src/dataplane/route-mirror.ts), because BIRD writes
 * every kernel route as `proto bird` whatever the config says.
 */
export const BGP_KERNEL_TABLE = 221;

export const DEFAULT_GRACEFUL_RESTART_SECONDS = 120;

/** One BGP session of a node's speaker. */
export interface BirdSession {
  /** BIRD protocol name, derived from the address (kind prefix + address with separators as _). */
  name: string;
  kind: 'peer' | 'mesh';
  address: string;
  asNumber: number;
  /** What the session is for, as a comment in the file (node name or "backend.bgp.peers[i]"). */
  description: string;
  password?: string;
}

export interface BirdInput {
  node: string;
  clusterNetwork: string;
  /** IPv4 router id (the node's IPv4 address). */
  routerId: string;
  asNumber: number;
  gracefulRestartSeconds: number;
  ownBlocks: string[];
  /** Cluster pools: only routes inside them are imported. */
  pools: string[];
  sessions: BirdSession[];
}

export class BirdConfigError extends Error {
  override name = 'BirdConfigError';
}

/** A peer of this node: another node (mesh) or an entry of backend.bgp.peers. */
export interface MeshNode {
  name: string;
  address: string;
}

export function sessionName(kind: 'peer' | 'mesh', address: string): string {
  return `${kind}_${canonicalIP(address).replace(/[.:]/g, '_')}`;
}

function checkAs(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1 || value > 4294967295)
    throw new BirdConfigError(`${field} must be an AS number 1..4294967295, got ${String(value)}`);
  return value;
}

/** TCP MD5 keys are at most 80 bytes; printable ASCII without `"` or `\` keeps the quoted string intact. */
export function passwordProblem(password: string): string | undefined {
  if (password.length === 0) return 'is empty';
  if (password.length > 80) return 'is longer than 80 characters (the TCP MD5 key limit)';
  if (!/^[\x20-\x7e]+$/.test(password) || /["\\]/.test(password))
    return 'must be printable ASCII without double quotes or backslashes';
  return undefined;
}

/**
 * The sessions this node opens: every other node when the mesh is on (iBGP, cluster AS), and every
 * peer whose nodeSelector matches this node's labels. `passwords` holds resolved Secret values by
 * peer address; a peer with a password reference but no value is an error naming the Secret.
 */
export function planSessions(
  bgp: BgpSpec,
  self: { name: string; labels: Labels; address: string },
  nodes: MeshNode[],
  passwords: ReadonlyMap<string, string> = new Map(),
): BirdSession[] {
  const sessions = new Map<string, BirdSession>();
  const selfAddr = canonicalIP(self.address);
  if (bgp.nodeToNodeMesh !== false) {
    for (const n of nodes) {
      if (n.name === self.name || !n.address) continue;
      const address = canonicalIP(n.address);
      if (address === selfAddr) continue;
      const name = sessionName('mesh', address);
      sessions.set(name, {
        name,
        kind: 'mesh',
        address,
        asNumber: checkAs(bgp.asNumber, 'backend.bgp.asNumber'),
        description: `node ${n.name}`,
      });
    }
  }
  (bgp.peers ?? []).forEach((p: BgpPeer, i: number) => {
    const field = `backend.bgp.peers[${i}]`;
    if (!matchesSelector(p.nodeSelector, self.labels, 'everything')) return;
    const address = canonicalIP(p.address);
    const name = sessionName('peer', address);
    const s: BirdSession = {
      name,
      kind: 'peer',
      address,
      asNumber: checkAs(p.asNumber, `${field}.asNumber`),
      description: field,
    };
    if (p.password) {
      const ref = p.password.secretKeyRef;
      const value = passwords.get(p.address);
      if (value === undefined)
        throw new BirdConfigError(
          `${field}.password: Secret ${ref.namespace ?? '(agent namespace)'}/${ref.name} key ${ref.key} could not be read`,
        );
      const problem = passwordProblem(value);
      if (problem)
        throw new BirdConfigError(`${field}.password: Secret ${ref.name} key ${ref.key} ${problem}`);
      s.password = value;
    }
    // An external peer on a node's address replaces the mesh session to that node.
    sessions.delete(sessionName('mesh', address));
    sessions.set(name, s);
  });
  return [...sessions.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Renders bird.conf; throws BirdConfigError naming the bad value. */
export function renderBirdConfig(input: BirdInput): string {
  let routerFamily: number;
  try {
    routerFamily = parseIP(input.routerId).family;
  } catch {
    routerFamily = 0;
  }
  if (routerFamily !== 4)
    throw new BirdConfigError(
      `node ${input.node} needs an IPv4 InternalIP for the BGP router id, got ${JSON.stringify(input.routerId)}`,
    );
  const blocks = [...new Set(input.ownBlocks.map((b) => formatCidr(parseCidr(b))))].sort();
  const pools = input.pools.map((p) => parseCidr(p));
  const ownBlocks4 = blocks.filter((b) => !b.includes(':'));
  const ownBlocks6 = blocks.filter((b) => b.includes(':'));
  for (const s of input.sessions) {
    if (!/^[a-z]+_[0-9a-f_]+$/.test(s.name)) throw new BirdConfigError(`bad session name ${s.name}`);
    canonicalIP(s.address);
    checkAs(s.asNumber, `session ${s.name} AS`);
    if (s.password !== undefined && passwordProblem(s.password))
      throw new BirdConfigError(`session ${s.name}: password ${passwordProblem(s.password)}`);
  }
  return renderText('bird.conf', {
    kernelTable: BGP_KERNEL_TABLE,
    node: input.node.replace(/[^a-z0-9.-]/g, '?'),
    clusterNetwork: input.clusterNetwork.replace(/[^a-z0-9.-]/g, '?'),
    routerId: canonicalIP(input.routerId),
    asNumber: checkAs(input.asNumber, 'backend.bgp.asNumber'),
    gracefulRestartSeconds: Math.max(1, Math.floor(input.gracefulRestartSeconds)),
    ownBlocks4,
    ownBlocks6,
    pools4: pools
      .filter((p) => p.family === 4)
      .map((p) => `${formatCidr(p)}+`)
      .sort(),
    pools6: pools
      .filter((p) => p.family === 6)
      .map((p) => `${formatCidr(p)}+`)
      .sort(),
    v4: pools.some((p) => p.family === 4),
    v6: pools.some((p) => p.family === 6),
    sessions: input.sessions.map((s) => ({
      ...s,
      description: s.description.replace(/[^A-Za-z0-9.[\]_ -]/g, '?'),
      password: s.password ?? '',
      allowLocalAs: s.kind === 'peer',
    })),
  });
}
