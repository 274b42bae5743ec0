// MultiNetworkPolicy (k8s.cni.cncf.io/v1beta1) -> an nftables table for ONE pod's interface on ONE
// extra network, enforced inside the pod's network namespace. The policy language is
// NetworkPolicy's, so this only builds the model the NetworkPolicy compiler (src/policy) already
// works on: endpoints are the pods attached to that network, with the addresses their
// network-status reports for it; policies are the MultiNetworkPolicies whose
// `k8s.v1.cni.cncf.io/policy-for` names the network. The compiler's forward-hook base chains are
// replaced by input/output hooks restricted to the interface, because inside a pod the traffic is
// local, not forwarded. Pure.
import { isIP } from 'node:net';
import type { KubeObject } from '../kube/object.ts';
import type { Resource } from '../kube/resource.ts';
import {
  buildModel,
  compile,
  renderFull,
  type NetworkPolicy,
  type NetworkPolicySpec,
  type PodObject,
  type Ruleset,
} from '../policy/index.ts';
import { parseNetworkStatus, NETWORK_STATUS_ANNOTATION } from './status.ts';

export const POLICY_FOR_ANNOTATION = 'k8s.v1.cni.cncf.io/policy-for';
export const MULTI_POLICY_API_VERSION = 'k8s.cni.cncf.io/v1beta1';

export type MultiNetworkPolicy = KubeObject<NetworkPolicySpec, unknown>;

/** The MultiNetworkPolicy kind (crds/), as the agent watches it and users write it. */
export const MultiNetworkPolicyResource: Resource = {
  group: 'k8s.cni.cncf.io',
  version: 'v1beta1',
  plural: 'multi-networkpolicies',
  kind: 'MultiNetworkPolicy',
  namespaced: true,
};

/** A MultiNetworkPolicy object for `networks` (the policy-for annotation's value). */
export function multiNetworkPolicy(
  name: string,
  namespace: string,
  networks: string,
  spec: NetworkPolicySpec,
): MultiNetworkPolicy {
  return {
    apiVersion: MULTI_POLICY_API_VERSION,
    kind: 'MultiNetworkPolicy',
    metadata: { name, namespace, annotations: { [POLICY_FOR_ANNOTATION]: networks } },
    spec,
  };
}

/** The networks (namespace/name) a policy is for; bare names are in the policy's namespace. */
export function policyNetworks(p: MultiNetworkPolicy): string[] {
  const raw = p.metadata.annotations?.[POLICY_FOR_ANNOTATION] ?? '';
  const ns = p.metadata.namespace ?? 'default';
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (s.includes('/') ? s : `${ns}/${s}`));
}

export interface AttachmentRef {
  /** The pod (namespace/name) whose interface is enforced. */
  pod: string;
  /** NAD key namespace/name, as in network-status. */
  network: string;
  ifname: string;
}

/** The table name for one interface (nft names: letters, digits, -, _). */
export function multiPolicyTable(ifname: string): string {
  return `trellis-mnp-${ifname.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

const SELF = '\u0000self';

/**
 * The ruleset for `att`, or undefined when no MultiNetworkPolicy applies to its network (then
 * nothing is enforced there and any earlier table should be removed).
 */
export function compileMultiPolicy(
  att: AttachmentRef,
  input: { pods: PodObject[]; namespaces: Pick<KubeObject, 'metadata'>[]; policies: MultiNetworkPolicy[] },
): Ruleset | undefined {
  const policies = input.policies.filter((p) => policyNetworks(p).includes(att.network));
  if (policies.length === 0) return undefined;
  // Endpoints: pods attached to this network, with their addresses on it. The enforced pod is put
  // on a node of its own so the compiler gives verdicts to it alone.
  const pods: PodObject[] = [];
  const overrides = new Map<string, string[]>();
  for (const pod of input.pods) {
    const key = `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
    const entries = parseNetworkStatus(pod.metadata.annotations?.[NETWORK_STATUS_ANNOTATION]).filter(
      (e) => e.name === att.network,
    );
    const ips = entries.flatMap((e) => (e.ips ?? []).filter((ip) => isIP(ip) !== 0));
    if (ips.length === 0) continue;
    overrides.set(key, ips);
    pods.push({ ...pod, spec: { ...pod.spec, nodeName: key === att.pod ? SELF : '' } });
  }
  const model = buildModel({
    pods,
    namespaces: input.namespaces,
    policies: policies as NetworkPolicy[],
    overrides,
  });
  const rs = compile(model, SELF, multiPolicyTable(att.ifname));
  const dev = JSON.stringify(att.ifname);
  rs.chains.set('egress', [
    'type filter hook output priority filter; policy accept;',
    `oifname != ${dev} accept`,
    'ct state established,related accept',
    'ip saddr vmap @egress4',
    'ip6 saddr vmap @egress6',
  ]);
  rs.chains.set('ingress', [
    'type filter hook input priority filter; policy accept;',
    `iifname != ${dev} accept`,
    'ct state established,related accept',
    'ip daddr vmap @ingress4',
    'ip6 daddr vmap @ingress6',
  ]);
  return rs;
}

/** The nft script that installs (or atomically replaces) the table. */
export function multiPolicyScript(rs: Ruleset): string {
  return renderFull(rs);
}
