// The NPWG `k8s.v1.cni.cncf.io/network-status` annotation: one entry per interface the pod got,
// built from the CNI results. Pure; the agent writes the JSON onto the Pod.
import type { CniDns, CniResult } from '../cni/types.ts';

export const NETWORK_STATUS_ANNOTATION = 'k8s.v1.cni.cncf.io/network-status';

export interface NetworkStatusEntry {
  /** "namespace/name" of the NAD; the pod network's own name for the primary interface. */
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  mtu?: number;
  default?: boolean;
  dns?: CniDns;
  gateway?: string[];
  'device-info'?: Record<string, unknown>;
}

export interface StatusInput {
  name: string;
  ifname: string;
  result: CniResult;
  isDefault: boolean;
  deviceInfo?: Record<string, unknown>;
}

/** The entry for one network: the sandbox interface named ifname, its addresses and gateways. */
export function statusEntry(input: StatusInput): NetworkStatusEntry {
  const { result, ifname } = input;
  const ifs = result.interfaces ?? [];
  let idx = ifs.findIndex((i) => i.name === ifname && i.sandbox !== undefined && i.sandbox !== '');
  if (idx < 0) idx = ifs.findIndex((i) => i.name === ifname);
  // IPs that point at our interface, or that point nowhere (IPAM-only results).
  const ips = (result.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === idx);
  const entry: NetworkStatusEntry = { name: input.name, interface: ifname };
  if (ips.length) entry.ips = ips.map((ip) => ip.address.split('/')[0]!);
  const iface = idx >= 0 ? ifs[idx] : undefined;
  if (iface?.mac) entry.mac = iface.mac;
  if (iface?.mtu) entry.mtu = iface.mtu;
  entry.default = input.isDefault;
  const gws = ips.map((ip) => ip.gateway).filter((g): g is string => !!g);
  if (input.isDefault && gws.length) entry.gateway = gws;
  const dns = result.dns;
  if (dns && (dns.nameservers?.length || dns.domain || dns.search?.length || dns.options?.length)) {
    entry.dns = dns;
  } else {
    entry.dns = {};
  }
  if (input.deviceInfo) entry['device-info'] = input.deviceInfo;
  return entry;
}

/**
 * What of a request's `ips` and `mac` the delegate's result does not show on the attachment's
 * interface (NPWG 4.1.2.1.3.2/4.1.2.1.4.2: the ADD must then fail), or undefined when all is there.
 */
export function unhonouredRequest(
  requested: { ips?: string[]; mac?: string },
  ifname: string,
  result: CniResult,
): string | undefined {
  const got = statusEntry({ name: '', ifname, result, isDefault: false });
  const missing = (requested.ips ?? []).filter((ip) => !got.ips?.includes(ip.split('/')[0]!));
  const problems: string[] = [];
  if (missing.length)
    problems.push(`"ips" ${missing.join(', ')} requested, the result has ${got.ips?.join(', ') || 'none'}`);
  if (requested.mac && got.mac?.toLowerCase() !== requested.mac.toLowerCase())
    problems.push(`"mac" ${requested.mac} requested, the result has ${got.mac ?? 'none'}`);
  if (!problems.length) return undefined;
  return (
    `${problems.join('; ')}: the NetworkAttachmentDefinition's plugins ignored the request; use ones that ` +
    'honour it (IPAM trellis or static for "ips"; macvlan or tuning for "mac") or drop it from the annotation'
  );
}

export function networkStatusJson(entries: NetworkStatusEntry[]): string {
  return JSON.stringify(entries, null, 2);
}

/**
 * The network-status entry of an extra-network interface (one named by its NAD, "namespace/name"),
 * from the pod's annotations; undefined until the agent has written it.
 */
export function attachmentStatus(
  annotations: Record<string, string> | undefined,
  ifname: string,
): NetworkStatusEntry | undefined {
  return parseNetworkStatus(annotations?.[NETWORK_STATUS_ANNOTATION]).find(
    (e) => e.interface === ifname && e.name.includes('/'),
  );
}

/** Reads the annotation back (for peers' addresses and for tests); malformed gives []. */
export function parseNetworkStatus(raw: string | undefined): NetworkStatusEntry[] {
  if (!raw) return [];
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) ? (v as NetworkStatusEntry[]) : [];
  } catch {
    return [];
  }
}
