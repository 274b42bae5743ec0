// Where a lab lives and what it is made of. Every later command (status, pod create, down) and every
// lab process (kubelet) reads lab.json instead of guessing, and every process the lab starts is
// recorded under pids/ so `trellis lab down` can stop it even after the CLI that started it crashed.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive } from '../src/util/process.ts';

export const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const NODE_BIN = join(REPO, 'node_modules', '.bin', 'node');

export type BackendMode = 'vxlan' | 'host-gw' | 'bgp';

/** A rack (lab/racks.ts): its own L2 segment and subnet behind a top-of-rack router. */
export interface LabRack {
  name: string;
  bridge: string;
  /** First three octets of the rack's /24. */
  subnet: string;
  /** The router's netns and its address on the rack (the nodes' BGP peer). */
  netns: string;
  ip: string;
  /** The router's address on the spine that joins the racks' routers. */
  spineIP: string;
  asNumber: number;
}

export interface LabNode {
  name: string;
  netns: string;
  ip: string;
  /** Root-netns end of the node's veth on the underlay bridge. */
  veth: string;
  /** The node's filesystem: host paths of the agent DaemonSet map below it. */
  root: string;
  /** With racks: the node's rack and its address there (the Node's InternalIP). */
  rack?: string;
  rackIP?: string;
}

/**
 * The IPv6 address a lab host has beside its IPv4 one on the underlay: a ULA /64 per lab, named
 * after the IPv4 address (198.18.0.11 -> fd98:198:18:0::11), so host-gw can route IPv6 pod blocks
 * via the peer's IPv6 InternalIP as on a dual-stack cluster.
 */
export function underlayIPv6(ipv4: string): string {
  const [a, b, c, d] = ipv4.split('.');
  return `fd98:${a}:${b}:${c}::${d}`;
}

export interface LabState {
  prefix: string;
  /** First three octets of the /24 underlay, e.g. 198.18.0 */
  subnet: string;
  bridge: string;
  gateway: string;
  backend: BackendMode;
  stateDir: string;
  kubeconfig: string;
  nodes: LabNode[];
  /** Racks, when the lab was brought up with --racks. */
  racks?: LabRack[];
  outside: { netns: string; ip: string; veth: string };
  /** true when the reference bridge plugin stands in for the operator and agent */
  standIn: boolean;
  /** true when nodes run kubelet + containerd (lab/nodes) and Trellis came from the Helm chart */
  realNodes?: boolean;
  /** real nodes only: 2 when they run containerd 2.x (hack/build-containerd2.sh), else Debian's 1.6 */
  containerd?: 1 | 2;
  createdAt: string;
}

export function defaultStateDir(): string {
  return resolve(process.env.TRELLIS_LAB_DIR ?? join(REPO, '.lab'));
}

export interface Layout {
  prefix: string;
  subnet: string;
}

/** Parses an underlay like 198.18.8.0/24 into its first three octets. */
export function parseSubnet(cidr: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(cidr);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) {
    throw new Error(`underlay subnet "${cidr}" must be an IPv4 /24 written like 198.18.0.0/24`);
  }
  return m.slice(1, 4).join('.');
}

export function validatePrefix(prefix: string): string {
  if (!/^[a-z][a-z0-9]{1,5}$/.test(prefix)) {
    throw new Error(
      `lab prefix "${prefix}" must be 2-6 lower-case letters or digits starting with a letter (it names netns and links)`,
    );
  }
  return prefix;
}

/** Names and addresses of a lab of n nodes; pure, so it is unit-tested. */
export function planLab(opts: {
  prefix: string;
  subnet: string;
  nodes: number;
  backend: BackendMode;
  stateDir: string;
}): LabState {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 200) {
    throw new Error(`--nodes must be a whole number from 1 to 200, got ${opts.nodes}`);
  }
  const { prefix, subnet, stateDir } = opts;
  const nodes: LabNode[] = [];
  for (let i = 1; i <= opts.nodes; i++) {
    const name = `node${i}`;
    nodes.push({
      name,
      netns: `${prefix}-${name}`,
      ip: `${subnet}.${10 + i}`,
      veth: `${prefix}-n${i}`,
      root: join(stateDir, 'nodes', name, 'root'),
    });
  }
  return {
    prefix,
    subnet,
    bridge: `${prefix}-br0`,
    gateway: `${subnet}.1`,
    backend: opts.backend,
    stateDir,
    kubeconfig: join(stateDir, 'controlplane', 'kubeconfig'),
    nodes,
    outside: { netns: `${prefix}-outside`, ip: `${subnet}.254`, veth: `${prefix}-out` },
    standIn: false,
    createdAt: new Date().toISOString(),
  };
}

export function statePath(stateDir: string): string {
  return join(stateDir, 'lab.json');
}

export function saveState(state: LabState): void {
  mkdirSync(state.stateDir, { recursive: true });
  writeFileSync(statePath(state.stateDir), JSON.stringify(state, null, 2));
}

export function readState(stateDir = defaultStateDir()): LabState | undefined {
  const p = statePath(stateDir);
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, 'utf8')) as LabState;
}

/** The lab's state, or a clear error telling the user to bring a lab up. */
export function requireState(stateDir = defaultStateDir()): LabState {
  const s = readState(stateDir);
  if (!s)
    throw new UserError(
      `no lab is up in ${stateDir}; run \`trellis lab up --nodes 3 --backend vxlan\` first`,
    );
  return s;
}

export function findNode(state: LabState, name: string): LabNode {
  const node = state.nodes.find((n) => n.name === name);
  if (!node) {
    throw new UserError(`unknown node "${name}"; the lab has ${state.nodes.map((n) => n.name).join(', ')}`);
  }
  return node;
}

/** A mistake the user can fix; the CLI prints only its message. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

// ---- process records ----

interface PidRecord {
  pid: number;
  /** A string the process's command line must contain, so a reused pid is never killed. */
  marker: string;
}

function pidDir(stateDir: string): string {
  return join(stateDir, 'pids');
}

export function recordPid(stateDir: string, name: string, pid: number, marker: string): void {
  mkdirSync(pidDir(stateDir), { recursive: true });
  writeFileSync(join(pidDir(stateDir), `${name}.json`), JSON.stringify({ pid, marker } satisfies PidRecord));
}

export function forgetPid(stateDir: string, name: string): void {
  rmSync(join(pidDir(stateDir), `${name}.json`), { force: true });
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** The recorded pid when that process is still alive and still ours. */
export function livePid(stateDir: string, name: string): number | undefined {
  const file = join(pidDir(stateDir), `${name}.json`);
  if (!existsSync(file)) return undefined;
  const rec = JSON.parse(readFileSync(file, 'utf8')) as PidRecord;
  if (!alive(rec.pid) || !cmdline(rec.pid).includes(rec.marker)) return undefined;
  return rec.pid;
}

export function recordedNames(stateDir: string): string[] {
  if (!existsSync(pidDir(stateDir))) return [];
  return readdirSync(pidDir(stateDir))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5));
}

/** SIGKILLs a recorded process if it is alive and ours; forgets it either way. */
export function killRecordedProcess(
  stateDir: string,
  name: string,
  signal: NodeJS.Signals = 'SIGKILL',
): boolean {
  const pid = livePid(stateDir, name);
  let killed = false;
  if (pid) {
    try {
      process.kill(pid, signal);
      killed = true;
    } catch {
      // gone between the check and the kill
    }
  }
  forgetPid(stateDir, name);
  return killed;
}
