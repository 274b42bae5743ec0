// The policy model: what the compiler and `explain` work on. It is deliberately not the
// NetworkPolicy API shape: endpoints are "things with labels, a namespace, addresses and named
// ports", and a policy is "a selector of endpoints with ordered allow rules per direction", so the
// same model serves MultiNetworkPolicy (endpoints = a pod's interface on one network).
import type { Family } from '../ipam/cidr.ts';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type Direction = 'ingress' | 'egress';

/** A port a pod's container declares (named ports are resolved against these). */
export interface NamedPort {
  name: string;
  port: number;
  protocol: Protocol;
}

/** A pod (or one interface of a pod) that policies can select and peers can match. */
export interface Endpoint {
  /** `namespace/name` (plus `@iface` for a secondary interface). */
  key: string;
  namespace: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  /** Canonical addresses, at most one per family for a primary interface. */
  addresses: string[];
  ports: NamedPort[];
  /** Node the endpoint runs on ('' when not scheduled). */
  node: string;
}

export interface Namespace {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** Matches labels; built once per selector (see selector.ts). */
export interface Matcher {
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
  /** A stable text form, used to share sets between rules with the same selector. */
  readonly text: string;
}

/** Endpoints matched by namespace and pod selectors together (both must hold). */
export interface SelectorPeer {
  kind: 'selector';
  /** undefined: only the policy's own namespace. */
  namespaces?: Matcher;
  /** undefined: every pod of the selected namespaces. */
  pods?: Matcher;
}

export interface CidrPeer {
  kind: 'cidr';
  cidr: string;
  except: string[];
}

export type Peer = SelectorPeer | CidrPeer;

export interface PortMatch {
  protocol: Protocol;
  /** A number, or a container port name resolved per destination endpoint; undefined: every port. */
  port?: number | string;
  /** Last port of a range starting at `port` (numeric ports only). */
  endPort?: number;
}

export interface Rule {
  /** undefined: every peer (the API's empty or absent from/to). */
  peers?: Peer[];
  /** undefined: every port and protocol. */
  ports?: PortMatch[];
}

export interface Policy {
  /** `namespace/name`. */
  key: string;
  namespace: string;
  name: string;
  selects: Matcher;
  /** undefined: the policy does not isolate this direction; [] isolates and allows nothing. */
  ingress?: Rule[];
  egress?: Rule[];
  /** Why (part of) the policy cannot be enforced; the unenforceable parts allow nothing. */
  problems: string[];
}

export interface Node {
  name: string;
  addresses: string[];
}

/** Everything the compiler and explain need, for the whole cluster. */
export interface PolicyModel {
  endpoints: Endpoint[];
  namespaces: Map<string, Namespace>;
  policies: Policy[];
  nodes: Node[];
}

export type { Family };
