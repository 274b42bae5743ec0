// `explain`: the verdict for one flow, per direction, and the policy and rule that decided it. It
// evaluates the same model and the same matching functions (match.ts) the nft compiler uses.
import { canonicalIP } from '../ipam/cidr.ts';
import { cidrPeerMatches, isolating, portMatches, selectorPeerMatches } from './match.ts';
import type { Direction, Endpoint, PolicyModel, Protocol } from './types.ts';

/** One side of a flow: a pod endpoint, or a bare address (a node, a hostNetwork pod, outside). */
export interface FlowEnd {
  ip: string;
  endpoint?: Endpoint;
  /** The node whose address `ip` is, when it is one. */
  node?: string;
}

export interface RuleRef {
  policy: string;
  direction: Direction;
  /** Index of the rule in spec.ingress / spec.egress. */
  rule: number;
}

export interface DirectionVerdict {
  allowed: boolean;
  /** Policies that select the pod for this direction (empty: not isolated). */
  isolatedBy: string[];
  /** The first rule (policies in name order, rules in order) that allows the flow. */
  decidedBy?: RuleRef;
  reason: string;
}

/** Flows explain can judge: the policy protocols, and ICMP (matched only by rules without ports). */
export type FlowProtocol = Protocol | 'ICMP';

export interface Explanation {
  from: string;
  to: string;
  port: number;
  protocol: FlowProtocol;
  allowed: boolean;
  egress: DirectionVerdict;
  ingress: DirectionVerdict;
}

export class ExplainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExplainError';
  }
}

/** Resolves `NS/POD`, `POD` (namespace default) or an IP address against the model. */
export function resolveEnd(model: PolicyModel, text: string): FlowEnd {
  let ip: string | undefined;
  try {
    ip = canonicalIP(text);
  } catch {
    ip = undefined;
  }
  if (ip) {
    const endpoint = model.endpoints.find((e) => e.addresses.includes(ip));
    const node = model.nodes.find((n) => n.addresses.includes(ip))?.name;
    return { ip, ...(endpoint ? { endpoint } : {}), ...(node ? { node } : {}) };
  }
  const [ns, name] = text.includes('/') ? text.split('/', 2) : ['default', text];
  const endpoint = model.endpoints.find((e) => e.namespace === ns && e.name === name);
  if (!endpoint) {
    throw new ExplainError(
      `no pod ${ns}/${name} with a pod network address (hostNetwork pods count as their node: give the node's IP)`,
    );
  }
  const first = endpoint.addresses[0];
  if (!first) throw new ExplainError(`pod ${ns}/${name} has no IP address yet`);
  return { ip: first, endpoint };
}

function direction(
  model: PolicyModel,
  dir: Direction,
  self: FlowEnd,
  other: FlowEnd,
  dest: FlowEnd,
  port: number,
  protocol: FlowProtocol,
): DirectionVerdict {
  const ep = self.endpoint;
  if (!ep)
    return { allowed: true, isolatedBy: [], reason: `${self.ip} is not a pod: no ${dir} policy applies` };
  if (other.node && other.node === ep.node)
    return {
      allowed: true,
      isolatedBy: [],
      reason: `traffic between a pod and its own node is always allowed`,
    };
  const pols = isolating(model.policies, ep, dir);
  if (pols.length === 0)
    return { allowed: true, isolatedBy: [], reason: `no policy selects ${ep.key} for ${dir}` };
  const isolatedBy = pols.map((p) => p.key);
  for (const p of pols) {
    for (const [i, rule] of p[dir]!.entries()) {
      const peerOk =
        rule.peers === undefined ||
        rule.peers.some((peer) =>
          peer.kind === 'cidr'
            ? cidrPeerMatches(peer, other.ip)
            : !!other.endpoint && selectorPeerMatches(peer, p.namespace, other.endpoint, model.namespaces),
        );
      if (!peerOk) continue;
      const portOk =
        rule.ports === undefined ||
        (protocol !== 'ICMP' && rule.ports.some((pm) => portMatches(pm, port, protocol, dest.endpoint)));
      if (!portOk) continue;
      return {
        allowed: true,
        isolatedBy,
        decidedBy: { policy: p.key, direction: dir, rule: i },
        reason: `allowed by ${p.key} ${dir}[${i}]`,
      };
    }
  }
  return {
    allowed: false,
    isolatedBy,
    reason: `${ep.key} is isolated for ${dir} by ${isolatedBy.join(', ')} and no rule of them allows ${other.ip} on ${port}/${protocol}`,
  };
}

/** The verdict for a new connection from `from` to `to` on `port`/`protocol`. */
export function explain(
  model: PolicyModel,
  from: FlowEnd,
  to: FlowEnd,
  port: number,
  protocol: FlowProtocol,
): Explanation {
  const base = { from: from.endpoint?.key ?? from.ip, to: to.endpoint?.key ?? to.ip, port, protocol };
  if (from.endpoint && from.endpoint === to.endpoint) {
    const same: DirectionVerdict = {
      allowed: true,
      isolatedBy: [],
      reason: 'traffic inside one pod never leaves it',
    };
    return { ...base, allowed: true, egress: same, ingress: same };
  }
  const egress = direction(model, 'egress', from, to, to, port, protocol);
  const ingress = direction(model, 'ingress', to, from, to, port, protocol);
  return { ...base, allowed: egress.allowed && ingress.allowed, egress, ingress };
}

export function renderExplanation(e: Explanation): string {
  const line = (d: Direction, v: DirectionVerdict) =>
    `  ${d.padEnd(8)} ${v.allowed ? 'ALLOW' : 'DENY '}  ${v.reason}`;
  return [
    `${e.from} -> ${e.to} ${e.port}/${e.protocol}: ${e.allowed ? 'ALLOWED' : 'DENIED'}`,
    line('egress', e.egress),
    line('ingress', e.ingress),
  ].join('\n');
}
