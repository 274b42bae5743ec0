// The NPWG multi-network request: the pod annotation `k8s.v1.cni.cncf.io/networks` in its two
// forms, the short list (`net-a, other-ns/net-b, net-c@eth2`) and the JSON list of selection
// elements. Pure parsing and validation: every error names the element (by position and text) and
// the field to fix, because the message ends up in a Pod Event a workload author reads.
import { isIP } from 'node:net';

export const NETWORKS_ANNOTATION = 'k8s.v1.cni.cncf.io/networks';

/** One requested network (NPWG "network selection element"), normalised. */
export interface NetworkSelection {
  /** Position in the annotation, 0-based (interface names default from it). */
  index: number;
  name: string;
  /** Absent: the pod's namespace. */
  namespace?: string;
  /** Absent: net<index+1>. */
  interface?: string;
  /** Static addresses, each `ip` or `ip/prefix` as written. */
  ips?: string[];
  mac?: string;
  /** Gateways that become the pod's default route(s) through this network. */
  defaultRoute?: string[];
  /** Passed to the delegate as `args.cni` (Multus convention). */
  cniArgs?: Record<string, unknown>;
  portMappings?: PortMapping[];
  bandwidth?: Bandwidth;
}

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol?: string;
  hostIP?: string;
}

export interface Bandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** A malformed annotation: what is wrong, which element, and what to write instead. */
export class NetworksAnnotationError extends Error {
  constructor(message: string) {
    super(`annotation ${NETWORKS_ANNOTATION}: ${message}`);
    this.name = 'NetworksAnnotationError';
  }
}

// Kubernetes object names: a DNS-1123 subdomain for NADs, a DNS-1123 label for namespaces.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

const KNOWN_KEYS = new Set([
  'name',
  'namespace',
  'interface',
  'ips',
  'mac',
  'default-route',
  'cni-args',
  'portMappings',
  'bandwidth',
  // Accepted and ignored: defined by NPWG/Multus for hardware we do not drive.
  'infiniband-guid',
  'deviceID',
  'ipam-claim-reference',
]);

/** Linux interface name rules (IFNAMSIZ 16 with the NUL; no '/', ':' or whitespace; not . or ..). */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > 15) return `is ${name.length} characters long; Linux allows at most 15`;
  if (name === '.' || name === '..') return 'cannot be "." or ".."';
  if (/[/:\s]/.test(name)) return 'cannot contain "/", ":" or whitespace';
  return undefined;
}

/** Parses the annotation; an empty or blank value is no request. Throws NetworksAnnotationError. */
export function parseNetworksAnnotation(raw: string | undefined): NetworkSelection[] {
  const text = (raw ?? '').trim();
  if (text === '') return [];
  if (text.startsWith('[') || text.startsWith('{')) return parseJsonForm(text);
  return parseShortForm(text);
}

function parseShortForm(text: string): NetworkSelection[] {
  return text.split(',').map((part, index) => {
    const item = part.trim();
    const where = `element ${index + 1} (${JSON.stringify(item)})`;
    if (item === '') {
      throw new NetworksAnnotationError(
        `${where} is empty; write a comma-separated list like "net-a, other-ns/net-b, net-c@eth2"`,
      );
    }
    const at = item.split('@');
    if (at.length > 2) throw new NetworksAnnotationError(`${where} has more than one "@"`);
    const slash = at[0]!.split('/');
    if (slash.length > 2) throw new NetworksAnnotationError(`${where} has more than one "/"`);
    const sel: NetworkSelection = { index, name: slash.length === 2 ? slash[1]! : slash[0]! };
    if (slash.length === 2) sel.namespace = slash[0]!;
    if (at.length === 2) sel.interface = at[1]!;
    validate(sel, where);
    return sel;
  });
}

function parseJsonForm(text: string): NetworkSelection[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err: unknown) {
    throw new NetworksAnnotationError(
      `is not valid JSON (${err instanceof Error ? err.message : String(err)}); ` +
        'write a JSON list like [{"name": "net-a", "interface": "net1"}] or the short form "net-a,net-b"',
    );
  }
  // Multus accepts a single object too; the spec's form is a list.
  const list = Array.isArray(parsed) ? (parsed as unknown[]) : [parsed];
  return list.map((el, index) => parseElement(el, index));
}

function parseElement(el: unknown, index: number): NetworkSelection {
  let where = `element ${index + 1}`;
  if (typeof el !== 'object' || el === null || Array.isArray(el)) {
    throw new NetworksAnnotationError(`${where} must be an object with at least "name"`);
  }
  const o = el as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') {
    throw new NetworksAnnotationError(`${where}: "name" is required and must be a string`);
  }
  where = `element ${index + 1} (${JSON.stringify(o.name)})`;
  for (const key of Object.keys(o)) {
    // NPWG 4.1.2.1: names without a period are reserved to the spec; others' extensions carry
    // reverse-domain names ("org.example.key") and are passed over.
    if (!KNOWN_KEYS.has(key) && !key.includes('.')) {
      throw new NetworksAnnotationError(
        `${where}: unknown field "${key}"; known fields are ${[...KNOWN_KEYS].slice(0, 9).join(', ')} ` +
          '(an extension of your own needs a reverse-domain name like "org.example.key")',
      );
    }
  }
  const sel: NetworkSelection = { index, name: o.name };
  const str = (key: string): string | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new NetworksAnnotationError(`${where}: "${key}" must be a string`);
    return v;
  };
  const strList = (key: string): string[] | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
      throw new NetworksAnnotationError(`${where}: "${key}" must be a list of strings`);
    }
    return v as string[];
  };
  const ns = str('namespace');
  if (ns !== undefined) sel.namespace = ns;
  const ifname = str('interface');
  if (ifname !== undefined) sel.interface = ifname;
  const mac = str('mac');
  if (mac !== undefined) sel.mac = mac;
  const ips = strList('ips');
  if (ips?.length === 0) {
    throw new NetworksAnnotationError(`${where}: "ips" must list at least one address, or be left out`);
  }
  if (ips) sel.ips = ips;
  const gw = strList('default-route');
  if (gw) sel.defaultRoute = gw;
  if (o['cni-args'] !== undefined) {
    const a = o['cni-args'];
    if (typeof a !== 'object' || a === null || Array.isArray(a)) {
      throw new NetworksAnnotationError(`${where}: "cni-args" must be an object`);
    }
    sel.cniArgs = a as Record<string, unknown>;
  }
  if (o.portMappings !== undefined) sel.portMappings = portMappings(o.portMappings, where);
  if (o.bandwidth !== undefined) sel.bandwidth = bandwidth(o.bandwidth, where);
  validate(sel, where);
  return sel;
}

function portMappings(v: unknown, where: string): PortMapping[] {
  if (!Array.isArray(v)) throw new NetworksAnnotationError(`${where}: "portMappings" must be a list`);
  return v.map((pm: unknown, i) => {
    const at = `${where}: portMappings[${i}]`;
    if (typeof pm !== 'object' || pm === null) throw new NetworksAnnotationError(`${at} must be an object`);
    const p = pm as Record<string, unknown>;
    for (const k of ['hostPort', 'containerPort']) {
      const n = p[k];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
        throw new NetworksAnnotationError(`${at}.${k} must be a port number 1-65535`);
      }
    }
    const out: PortMapping = { hostPort: p.hostPort as number, containerPort: p.containerPort as number };
    if (p.protocol !== undefined) {
      if (typeof p.protocol !== 'string' || !/^(tcp|udp|sctp)$/i.test(p.protocol)) {
        throw new NetworksAnnotationError(`${at}.protocol must be tcp, udp or sctp`);
      }
      out.protocol = p.protocol.toLowerCase();
    }
    if (p.hostIP !== undefined) {
      if (typeof p.hostIP !== 'string' || !isIP(p.hostIP)) {
        throw new NetworksAnnotationError(`${at}.hostIP must be an IP address`);
      }
      out.hostIP = p.hostIP;
    }
    return out;
  });
}

function bandwidth(v: unknown, where: string): Bandwidth {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new NetworksAnnotationError(`${where}: "bandwidth" must be an object`);
  }
  const out: Bandwidth = {};
  for (const [k, n] of Object.entries(v as Record<string, unknown>)) {
    if (!['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'].includes(k)) {
      throw new NetworksAnnotationError(
        `${where}: bandwidth.${k} is unknown; use ingressRate, ingressBurst, egressRate, egressBurst`,
      );
    }
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
      throw new NetworksAnnotationError(`${where}: bandwidth.${k} must be a non-negative integer`);
    }
    out[k as keyof Bandwidth] = n;
  }
  return out;
}

function validate(sel: NetworkSelection, where: string): void {
  if (!DNS1123_SUBDOMAIN.test(sel.name) || sel.name.length > 253) {
    throw new NetworksAnnotationError(
      `${where}: network name ${JSON.stringify(sel.name)} is not a valid object name ` +
        '(lower-case letters, digits, "-" and ".")',
    );
  }
  if (sel.namespace !== undefined && (!DNS1123_LABEL.test(sel.namespace) || sel.namespace.length > 63)) {
    throw new NetworksAnnotationError(
      `${where}: namespace ${JSON.stringify(sel.namespace)} is not a valid namespace name`,
    );
  }
  if (sel.interface !== undefined) {
    const problem = interfaceNameProblem(sel.interface);
    if (problem) {
      throw new NetworksAnnotationError(`${where}: interface ${JSON.stringify(sel.interface)} ${problem}`);
    }
  }
  if (sel.mac !== undefined && !MAC.test(sel.mac)) {
    throw new NetworksAnnotationError(
      `${where}: mac ${JSON.stringify(sel.mac)} is not a MAC address like "02:00:00:00:00:01"`,
    );
  }
  if (sel.mac !== undefined && (parseInt(sel.mac.slice(0, 2), 16) & 1) === 1) {
    throw new NetworksAnnotationError(
      `${where}: mac ${sel.mac} is a multicast address; the first octet must be even (e.g. 02:...)`,
    );
  }
  for (const ip of sel.ips ?? []) {
    const [addr, prefix, extra] = ip.split('/');
    const fam = isIP(addr ?? '');
    const maxPrefix = fam === 6 ? 128 : 32;
    const badPrefix =
      extra !== undefined || (prefix !== undefined && (!/^\d+$/.test(prefix) || Number(prefix) > maxPrefix));
    if (fam === 0 || badPrefix) {
      throw new NetworksAnnotationError(
        `${where}: ips entry ${JSON.stringify(ip)} is not an IP address (like "10.1.0.5" or "10.1.0.5/24")`,
      );
    }
  }
  for (const gw of sel.defaultRoute ?? []) {
    if (isIP(gw) === 0) {
      throw new NetworksAnnotationError(
        `${where}: default-route entry ${JSON.stringify(gw)} is not a gateway IP address`,
      );
    }
  }
}
