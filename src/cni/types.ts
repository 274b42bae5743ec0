// CNI spec types shared by the shim (cni/) and the agent: the environment a runtime passes, the
// network configuration on stdin, and the ADD result. Plain data, no behaviour.

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';

export const CNI_COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];

/** The CNI_* environment variables the runtime sets for one invocation. */
export interface CniEnv {
  CNI_COMMAND: CniCommand;
  CNI_CONTAINERID?: string;
  CNI_NETNS?: string;
  CNI_IFNAME?: string;
  CNI_ARGS?: string;
  CNI_PATH?: string;
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIPConfig {
  /** CIDR notation: address/prefix. */
  address: string;
  gateway?: string;
  /** Index into the result's interfaces array. */
  interface?: number;
  /** Only in results for spec versions before 1.0.0. */
  version?: '4' | '6';
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  scope?: number;
  table?: number;
  priority?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIPConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

export interface CniAttachment {
  containerID: string;
  ifname: string;
}

/** The IPAM section when Trellis is used as the IPAM plugin of an attachment (macvlan, bridge...). */
export interface TrellisIpamConfig {
  type: string;
  /** Attachment pool name (ClusterNetwork spec.attachments[].name). */
  pool?: string;
  /** Agent socket; defaults to DEFAULT_SOCKET. */
  socket?: string;
  routes?: CniRoute[];
}

/** One plugin's network configuration as the runtime hands it on stdin (with runtime fields). */
export interface NetConf {
  cniVersion: string;
  cniVersions?: string[];
  name: string;
  type: string;
  /** Trellis: the agent's unix socket. */
  socket?: string;
  /** Trellis: pod interface MTU (the agent falls back to the ClusterNetwork backend MTU). */
  mtu?: number;
  /** Trellis: the plugin's deadline in seconds (docs/cni-shim.md). */
  timeoutSeconds?: number;
  /** Trellis: the ClusterNetwork this config belongs to. */
  clusterNetwork?: string;
  ipam?: TrellisIpamConfig;
  prevResult?: CniResult;
  runtimeConfig?: { ips?: string[]; mac?: string; portMappings?: unknown[] };
  args?: Record<string, unknown>;
  'cni.dev/valid-attachments'?: CniAttachment[];
  [extra: string]: unknown;
}

/** Where the agent listens when a config names no socket. */
export const DEFAULT_SOCKET = '/run/trellis/cni.sock';

/** Parses CNI_ARGS ("K=V;K2=V2") into a map; ignores malformed pairs. */
export function parseCniArgs(args: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!args) return out;
  for (const pair of args.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}
