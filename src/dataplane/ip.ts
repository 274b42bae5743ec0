// iproute2 wrappers. Writes go through `ip -batch` (one process for many changes); reads use
// `ip -j` JSON. A netns is entered by path with nsenter because runtimes hand us paths
// (/proc/PID/ns/net, /var/run/netns/cni-...), which `ip -n` does not accept.
import { run, CommandError } from './exec.ts';

export interface NetnsOption {
  /** Path of the network namespace to act in; the caller's own namespace when absent. */
  netns?: string;
}

function ipCommand(args: string[], opts: NetnsOption): [string, string[]] {
  if (opts.netns) return ['nsenter', [`--net=${opts.netns}`, '--', 'ip', ...args]];
  return ['ip', args];
}

/** Applies iproute2 commands (one per line, without the leading `ip`) in one process. */
export async function ipBatch(lines: string[], opts: NetnsOption = {}): Promise<void> {
  if (lines.length === 0) return;
  const [cmd, args] = ipCommand(['-batch', '-'], opts);
  await run(cmd, args, lines.join('\n') + '\n');
}

/** Several `ip -j` reads in one process; returns one parsed list per command, in order. */
export async function ipJsonBatch(lines: string[], opts: NetnsOption = {}): Promise<unknown[][]> {
  const [cmd, args] = ipCommand(['-j', '-batch', '-'], opts);
  const out = await run(cmd, args, lines.join('\n') + '\n');
  const parsed = out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as unknown[]);
  // Commands that print nothing (an empty route list) leave no line: pad to the command count.
  while (parsed.length < lines.length) parsed.push([]);
  return parsed;
}

export function isNoSuchDevice(err: unknown): boolean {
  return err instanceof CommandError && /Cannot find device|does not exist|No such device/i.test(err.stderr);
}

export interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate: string;
  address?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

export interface IpAddrInfo {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  scope: string;
}

export interface IpAddr extends IpLink {
  addr_info: IpAddrInfo[];
}

export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  type?: string;
  flags?: string[];
}

export interface IpNeigh {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

export interface BridgeFdb {
  mac: string;
  ifname?: string;
  dst?: string;
  flags?: string[];
  state?: string;
}

/** `bridge -j fdb show dev X`. */
export async function fdbShow(dev: string): Promise<BridgeFdb[]> {
  const out = await run('bridge', ['-j', 'fdb', 'show', 'dev', dev]);
  return out.trim() ? (JSON.parse(out) as BridgeFdb[]) : [];
}

/** Applies `bridge` commands (one per line, without the leading `bridge`) in one process. */
export async function bridgeBatch(lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  await run('bridge', ['-batch', '-'], lines.join('\n') + '\n');
}
