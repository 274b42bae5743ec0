// networking.k8s.io/v1 NetworkPolicy, Pods, Namespaces and Nodes -> the policy model. All of
// the API's defaulting lives here (policyTypes, protocol TCP, empty vs absent lists), so the
// compiler and explain see one meaning per field. Problems are collected per policy, naming the
// field, instead of throwing: one bad policy must not stop the others from being enforced.
import type { LabelSelector } from './selector.ts';
import { canonicalIP, parseCidr, formatCidr } from '../ipam/cidr.ts';
import type { KubeObject } from '../kube/object.ts';
import { matcher } from './selector.ts';
import type {
  Endpoint,
  Matcher,
  Namespace,
  NamedPort,
  Node,
  Peer,
  Policy,
  PolicyModel,
  PortMatch,
  Protocol,
  Rule,
} from './types.ts';

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector | null;
  namespaceSelector?: LabelSelector | null;
  ipBlock?: { cidr: string; except?: string[] | null } | null;
}

export interface NetworkPolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}

export interface NetworkPolicySpec {
  podSelector?: LabelSelector | null;
  policyTypes?: string[] | null;
  ingress?: { from?: NetworkPolicyPeer[] | null; ports?: NetworkPolicyPort[] | null }[] | null;
  egress?: { to?: NetworkPolicyPeer[] | null; ports?: NetworkPolicyPort[] | null }[] | null;
}

export type NetworkPolicy = KubeObject<NetworkPolicySpec, unknown>;

export interface PodObjectSpec {
  nodeName?: string;
  hostNetwork?: boolean;
  containers?: { ports?: { name?: string; containerPort: number; protocol?: string }[] }[];
}

export type PodObject = KubeObject<
  PodObjectSpec,
  { phase?: string; podIP?: string; podIPs?: { ip: string }[]; hostIP?: string }
>;

export type NodeObject = Pick<
  KubeObject<unknown, { addresses?: { type: string; address: string }[] }>,
  'metadata' | 'status'
>;

const PROTOCOLS = new Set<Protocol>(['TCP', 'UDP', 'SCTP']);

function protocolOf(p: string | undefined, field: string, problems: string[]): Protocol {
  const v = p ?? 'TCP';
  if (PROTOCOLS.has(v as Protocol)) return v as Protocol;
  problems.push(`${field}: protocol must be TCP, UDP or SCTP, got ${JSON.stringify(v)}`);
  return 'TCP';
}

function safeMatcher(sel: LabelSelector, field: string, problems: string[]): Matcher | undefined {
  try {
    return matcher(sel, field);
  } catch (err: unknown) {
    problems.push(err instanceof Error ? err.message : String(err));
    return undefined;
  }
}

function convertPeer(p: NetworkPolicyPeer, field: string, problems: string[]): Peer | undefined {
  if (p.ipBlock) {
    if (p.podSelector || p.namespaceSelector) {
      problems.push(`${field}: ipBlock cannot be combined with podSelector or namespaceSelector`);
      return undefined;
    }
    try {
      const cidr = parseCidr(p.ipBlock.cidr, true);
      const except = (p.ipBlock.except ?? []).map((e, i) => {
        const c = parseCidr(e, true);
        if (c.family !== cidr.family || c.prefix < cidr.prefix || !inside(cidr, c.base))
          throw new Error(`${field}.ipBlock.except[${i}]: ${e} is not inside ${p.ipBlock!.cidr}`);
        return formatCidr(c);
      });
      return { kind: 'cidr', cidr: formatCidr(cidr), except };
    } catch (err: unknown) {
      problems.push(`${field}.ipBlock: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }
  if (!p.podSelector && !p.namespaceSelector) {
    problems.push(`${field}: a peer needs podSelector, namespaceSelector or ipBlock`);
    return undefined;
  }
  const peer: Peer = { kind: 'selector' };
  if (p.namespaceSelector) {
    const m = safeMatcher(p.namespaceSelector, `${field}.namespaceSelector`, problems);
    if (!m) return undefined;
    peer.namespaces = m;
  }
  if (p.podSelector) {
    const m = safeMatcher(p.podSelector, `${field}.podSelector`, problems);
    if (!m) return undefined;
    peer.pods = m;
  }
  return peer;
}

function maskOf(c: { family: 4 | 6; prefix: number }): bigint {
  const bits = c.family === 4 ? 32 : 128;
  return ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - c.prefix)) - 1n);
}

function inside(c: { family: 4 | 6; base: bigint; prefix: number }, v: bigint): boolean {
  return (v & maskOf(c)) === c.base;
}

function convertPort(p: NetworkPolicyPort, field: string, problems: string[]): PortMatch | undefined {
  const m: PortMatch = { protocol: protocolOf(p.protocol, `${field}.protocol`, problems) };
  if (p.port !== undefined && p.port !== null) {
    if (typeof p.port === 'number') {
      if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
        problems.push(`${field}.port: ${p.port} is not a port number (1-65535)`);
        return undefined;
      }
    } else if (/^\d+$/.test(p.port)) {
      m.port = Number(p.port);
    } else if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.port) || p.port.length > 15) {
      problems.push(`${field}.port: ${JSON.stringify(p.port)} is not a valid port name`);
      return undefined;
    }
    m.port ??= p.port;
  }
  if (p.endPort !== undefined && p.endPort !== null) {
    if (typeof m.port !== 'number') {
      problems.push(`${field}.endPort: needs a numeric port`);
      return undefined;
    }
    if (!Number.isInteger(p.endPort) || p.endPort < m.port || p.endPort > 65535) {
      problems.push(`${field}.endPort: must be between port (${m.port}) and 65535, got ${p.endPort}`);
      return undefined;
    }
    m.endPort = p.endPort;
  }
  return m;
}

function convertRules(
  rules: {
    from?: NetworkPolicyPeer[] | null;
    to?: NetworkPolicyPeer[] | null;
    ports?: NetworkPolicyPort[] | null;
  }[],
  dir: 'ingress' | 'egress',
  problems: string[],
): Rule[] {
  return rules.map((r, i) => {
    const field = `spec.${dir}[${i}]`;
    const peerField = dir === 'ingress' ? 'from' : 'to';
    const rawPeers = (dir === 'ingress' ? r.from : r.to) ?? [];
    const rule: Rule = {};
    const before = problems.length;
    if (rawPeers.length > 0) {
      rule.peers = rawPeers.flatMap((p, j) => convertPeer(p, `${field}.${peerField}[${j}]`, problems) ?? []);
    }
    if ((r.ports ?? []).length > 0) {
      rule.ports = (r.ports ?? []).flatMap((p, j) => convertPort(p, `${field}.ports[${j}]`, problems) ?? []);
    }
    // A rule with a part we cannot read allows nothing rather than more than was written.
    if (problems.length > before) return { peers: [], ports: [] };
    return rule;
  });
}

/** One NetworkPolicy -> model policy, with the API's defaults applied. */
export function fromNetworkPolicy(np: NetworkPolicy): Policy {
  const namespace = np.metadata.namespace ?? 'default';
  const name = np.metadata.name;
  const spec = np.spec ?? {};
  const problems: string[] = [];
  const selects = safeMatcher(spec.podSelector ?? {}, 'spec.podSelector', problems) ?? {
    matches: () => false,
    text: 'invalid',
  };
  // policyTypes default: Ingress always; Egress when the policy has egress rules.
  let types = spec.policyTypes;
  if (!types || types.length === 0)
    types = (spec.egress ?? []).length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
  for (const t of types)
    if (t !== 'Ingress' && t !== 'Egress')
      problems.push(`spec.policyTypes: ${JSON.stringify(t)} is not Ingress or Egress`);
  const policy: Policy = { key: `${namespace}/${name}`, namespace, name, selects, problems };
  if (types.includes('Ingress')) policy.ingress = convertRules(spec.ingress ?? [], 'ingress', problems);
  if (types.includes('Egress')) policy.egress = convertRules(spec.egress ?? [], 'egress', problems);
  return policy;
}

/** The addresses a pod has, canonical; none for a pod without IPs. */
export function podAddresses(pod: PodObject): string[] {
  const ips = pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : []);
  const out: string[] = [];
  for (const ip of ips) {
    try {
      out.push(canonicalIP(ip));
    } catch {
      // a malformed status address is not ours to fix; the pod just has no usable address
    }
  }
  return out;
}

function namedPorts(pod: PodObject): NamedPort[] {
  const out: NamedPort[] = [];
  for (const c of pod.spec?.containers ?? [])
    for (const p of c.ports ?? [])
      if (p.name && PROTOCOLS.has((p.protocol ?? 'TCP') as Protocol))
        out.push({ name: p.name, port: p.containerPort, protocol: (p.protocol ?? 'TCP') as Protocol });
  return out;
}

/**
 * Pods -> endpoints. hostNetwork pods are not endpoints: they count as their node (selectors do
 * not select them; their traffic is the node's). Finished pods hold no address.
 */
export function endpointsFromPods(pods: PodObject[], overrides?: Map<string, string[]>): Endpoint[] {
  const out: Endpoint[] = [];
  for (const pod of pods) {
    if (pod.spec?.hostNetwork) continue;
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    const namespace = pod.metadata.namespace ?? 'default';
    const key = `${namespace}/${pod.metadata.name}`;
    const override = overrides?.get(key);
    if (override) {
      out.push({ ...endpointOf(pod, namespace, key), addresses: override });
      continue;
    }
    let ep = endpoints.get(pod);
    if (!ep) endpoints.set(pod, (ep = endpointOf(pod, namespace, key)));
    out.push(ep);
  }
  return out;
}

/**
 * Endpoints by pod object. A watch cache replaces a pod's object on every change and never edits
 * one in place, so an object's endpoint never goes stale; the agent rebuilds the model on every pod
 * event, and parsing each pod's addresses again was most of that sync's cost (make bench-scale).
 */
const endpoints = new WeakMap<PodObject, Endpoint>();

function endpointOf(pod: PodObject, namespace: string, key: string): Endpoint {
  return {
    key,
    namespace,
    name: pod.metadata.name,
    labels: pod.metadata.labels ?? {},
    addresses: podAddresses(pod),
    ports: namedPorts(pod),
    node: pod.spec?.nodeName ?? '',
  };
}

export function nodesFromObjects(nodes: NodeObject[]): Node[] {
  return nodes.map((n) => ({
    name: n.metadata.name,
    addresses: (n.status?.addresses ?? [])
      .filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP')
      .map((a) => a.address),
  }));
}

export function buildModel(input: {
  pods: PodObject[];
  namespaces: Pick<KubeObject, 'metadata'>[];
  policies: NetworkPolicy[];
  nodes?: NodeObject[];
  /** Addresses known before the Pod status has them (the agent's CNI ADD). */
  overrides?: Map<string, string[]>;
}): PolicyModel {
  const namespaces = new Map<string, Namespace>();
  for (const ns of input.namespaces)
    namespaces.set(ns.metadata.name, { name: ns.metadata.name, labels: ns.metadata.labels ?? {} });
  const nodes = nodesFromObjects(input.nodes ?? []);
  // hostIP of hostNetwork pods is an address of their node too
  for (const p of input.pods) {
    if (!p.spec?.hostNetwork || !p.spec.nodeName) continue;
    const n = nodes.find((x) => x.name === p.spec!.nodeName);
    const ips = podAddresses(p);
    if (n) n.addresses = [...new Set([...n.addresses, ...ips])];
    else nodes.push({ name: p.spec.nodeName, addresses: ips });
  }
  return {
    endpoints: endpointsFromPods(input.pods, input.overrides),
    namespaces,
    policies: input.policies
      .map(fromNetworkPolicy)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
    nodes,
  };
}
