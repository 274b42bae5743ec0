// Which policies select an endpoint and whether a rule's peer or port matches a flow: the
// semantics shared by the nft compiler (which turns them into sets) and explain (which evaluates
// them for one flow), so the two cannot disagree on what a field means.
import { parseCidr, parseIP, containsIP } from '../ipam/cidr.ts';
import type { Direction, Endpoint, Namespace, Peer, Policy, PortMatch, Protocol } from './types.ts';

/** Policies that select `ep` and isolate it in `dir`, in the model's (sorted) order. */
export function isolating(policies: Policy[], ep: Endpoint, dir: Direction): Policy[] {
  return policies.filter(
    (p) => p[dir] !== undefined && p.namespace === ep.namespace && p.selects.matches(ep.labels),
  );
}

/** Whether a selector peer (of a policy in `policyNamespace`) matches an endpoint. */
export function selectorPeerMatches(
  peer: Extract<Peer, { kind: 'selector' }>,
  policyNamespace: string,
  ep: Endpoint,
  namespaces: Map<string, Namespace>,
): boolean {
  if (peer.namespaces) {
    const ns = namespaces.get(ep.namespace);
    // a pod whose Namespace object is not known (yet) matches no namespace selector
    if (!ns || !peer.namespaces.matches(ns.labels)) return false;
  } else if (ep.namespace !== policyNamespace) return false;
  return peer.pods ? peer.pods.matches(ep.labels) : true;
}

/** Whether an address lies in an ipBlock (cidr minus except). */
export function cidrPeerMatches(peer: Extract<Peer, { kind: 'cidr' }>, ip: string): boolean {
  const { family, value } = parseIP(ip);
  if (!containsIP(parseCidr(peer.cidr), family, value)) return false;
  return !peer.except.some((e) => containsIP(parseCidr(e), family, value));
}

/** The port number a port match means on a destination endpoint (named ports resolve per pod). */
export function resolvePort(pm: PortMatch, dest: Endpoint | undefined): number | undefined {
  if (typeof pm.port !== 'string') return pm.port;
  return dest?.ports.find((p) => p.name === pm.port && p.protocol === pm.protocol)?.port;
}

export function portMatches(
  pm: PortMatch,
  port: number,
  protocol: Protocol,
  dest: Endpoint | undefined,
): boolean {
  if (pm.protocol !== protocol) return false;
  if (pm.port === undefined) return true;
  const first = resolvePort(pm, dest);
  if (first === undefined) return false;
  return port >= first && port <= (typeof pm.port === 'number' ? (pm.endPort ?? first) : first);
}
