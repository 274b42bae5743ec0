// The compiler and explain on the upstream netpol e2e cases: namespaces x, y, z with pods a, b, c,
// every pod serving 80 and 81 over TCP and UDP with the upstream port names.
import { describe, expect, it } from 'vitest';
import {
  buildModel,
  compile,
  endpointsFromPods,
  explain,
  fromNetworkPolicy,
  renderDiff,
  renderFull,
  resolveEnd,
  stats,
  type NetworkPolicy,
  type NetworkPolicySpec,
  type PodObject,
  type PolicyModel,
  type Protocol,
} from './index.ts';
import type { KubeObject } from '../kube/object.ts';

const NS = ['x', 'y', 'z'];
const PODS = ['a', 'b', 'c'];
const ALL = NS.flatMap((n) => PODS.map((p) => `${n}/${p}`));

function pod(ns: string, name: string, i: number, extra: Partial<PodObject['spec']> = {}): PodObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { pod: name } },
    spec: {
      nodeName: i % 2 === 0 ? 'n1' : 'n2',
      containers: [
        {
          ports: [80, 81].flatMap((p) => [
            { name: `serve-${p}-tcp`, containerPort: p, protocol: 'TCP' },
            { name: `serve-${p}-udp`, containerPort: p, protocol: 'UDP' },
          ]),
        },
      ],
      ...extra,
    },
    status: { phase: 'Running', podIPs: [{ ip: `10.0.0.${i + 1}` }, { ip: `fd00::${i + 1}` }] },
  };
}

function namespaces(labels: Record<string, Record<string, string>> = {}): Pick<KubeObject, 'metadata'>[] {
  return NS.map((n) => ({ metadata: { name: n, labels: { ns: n, ...(labels[n] ?? {}) } } }));
}

function np(ns: string, name: string, spec: NetworkPolicySpec): NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace: ns, name },
    spec,
  };
}

function cluster(
  policies: NetworkPolicy[],
  opts: { pods?: PodObject[]; nsLabels?: Record<string, Record<string, string>> } = {},
): PolicyModel {
  const pods = opts.pods ?? ALL.map((k, i) => pod(k.split('/')[0]!, k.split('/')[1]!, i));
  return buildModel({
    pods,
    namespaces: namespaces(opts.nsLabels),
    policies,
    nodes: [
      { metadata: { name: 'n1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.1' }] } },
      { metadata: { name: 'n2' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }] } },
    ],
  });
}

/** The 9x9 truth table as the set of allowed `from->to` pairs (self always allowed). */
function allowed(model: PolicyModel, port: number, proto: Protocol = 'TCP'): Set<string> {
  const out = new Set<string>();
  for (const f of ALL)
    for (const t of ALL)
      if (explain(model, resolveEnd(model, f), resolveEnd(model, t), port, proto).allowed)
        out.add(`${f}->${t}`);
  return out;
}

function expected(fn: (from: string, to: string) => boolean): Set<string> {
  const out = new Set<string>();
  for (const f of ALL) for (const t of ALL) if (f === t || fn(f, t)) out.add(`${f}->${t}`);
  return out;
}

const ns = (k: string) => k.split('/')[0];
const name = (k: string) => k.split('/')[1];

describe('NetworkPolicy semantics (explain)', () => {
  it('no policy: everything allowed', () => {
    expect(allowed(cluster([]), 80)).toEqual(expected(() => true));
  });

  it('default deny ingress in x: nothing reaches x, x still sends', () => {
    const m = cluster([np('x', 'deny', { podSelector: {} })]);
    expect(allowed(m, 80)).toEqual(expected((_, t) => ns(t) !== 'x'));
    const e = explain(m, resolveEnd(m, 'y/a'), resolveEnd(m, 'x/b'), 80, 'TCP');
    expect(e.ingress.isolatedBy).toEqual(['x/deny']);
    expect(e.egress.allowed).toBe(true);
  });

  it('allow from the same namespace only (podSelector {} in from)', () => {
    const m = cluster([np('x', 'same', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })]);
    expect(allowed(m, 80)).toEqual(expected((f, t) => ns(t) !== 'x' || ns(f) === 'x'));
  });

  it('namespaceSelector and podSelector in one peer are ANDed; as two peers ORed', () => {
    const and = cluster([
      np('x', 'and', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } },
            ],
          },
        ],
      }),
    ]);
    expect(allowed(and, 80)).toEqual(expected((f, t) => t !== 'x/a' || f === 'y/b'));
    const or = cluster([
      np('x', 'or', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { ns: 'y' } } },
              { podSelector: { matchLabels: { pod: 'b' } } },
            ],
          },
        ],
      }),
    ]);
    expect(allowed(or, 80)).toEqual(expected((f, t) => t !== 'x/a' || ns(f) === 'y' || f === 'x/b'));
  });

  it('matchExpressions: NotIn and DoesNotExist', () => {
    const m = cluster([
      np('x', 'expr', {
        podSelector: { matchExpressions: [{ key: 'pod', operator: 'NotIn', values: ['a'] }] },
        ingress: [
          {
            from: [
              { namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'In', values: ['z'] }] } },
            ],
          },
        ],
      }),
    ]);
    expect(allowed(m, 80)).toEqual(expected((f, t) => ns(t) !== 'x' || t === 'x/a' || ns(f) === 'z'));
  });

  it('named port: allows 80 by name, 81 stays closed; protocol must match the name', () => {
    const m = cluster([
      np('x', 'named', {
        podSelector: {},
        ingress: [{ ports: [{ port: 'serve-80-tcp', protocol: 'TCP' }] }],
      }),
    ]);
    expect(allowed(m, 80)).toEqual(expected(() => true));
    expect(allowed(m, 81)).toEqual(expected((_, t) => ns(t) !== 'x'));
    expect(allowed(m, 80, 'UDP')).toEqual(expected((_, t) => ns(t) !== 'x'));
  });

  it('named port resolves per destination pod', () => {
    const pods = ALL.map((k, i) => pod(ns(k)!, name(k)!, i));
    // x/b serves "web" on 81, the others on 80
    for (const p of pods)
      p.spec!.containers![0]!.ports!.push({
        name: 'web',
        containerPort: p.metadata.name === 'b' ? 81 : 80,
        protocol: 'TCP',
      });
    const m = cluster([np('x', 'web', { podSelector: {}, ingress: [{ ports: [{ port: 'web' }] }] })], {
      pods,
    });
    const a80 = explain(m, resolveEnd(m, 'y/a'), resolveEnd(m, 'x/a'), 80, 'TCP');
    const b80 = explain(m, resolveEnd(m, 'y/a'), resolveEnd(m, 'x/b'), 80, 'TCP');
    const b81 = explain(m, resolveEnd(m, 'y/a'), resolveEnd(m, 'x/b'), 81, 'TCP');
    expect([a80.allowed, b80.allowed, b81.allowed]).toEqual([true, false, true]);
  });

  it('endPort range 80-81 allows both; 80 alone does not allow 81', () => {
    const range = cluster([
      np('x', 'r', { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 81 }] }] }),
    ]);
    expect(allowed(range, 81)).toEqual(expected(() => true));
    const single = cluster([np('x', 's', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] })]);
    expect(allowed(single, 81)).toEqual(expected((_, t) => ns(t) !== 'x'));
  });

  it('UDP rule does not open TCP; protocol-only port allows every port of it', () => {
    const m = cluster([np('x', 'udp', { podSelector: {}, ingress: [{ ports: [{ protocol: 'UDP' }] }] })]);
    expect(allowed(m, 81, 'UDP')).toEqual(expected(() => true));
    expect(allowed(m, 81, 'TCP')).toEqual(expected((_, t) => ns(t) !== 'x'));
    const sctp = cluster([
      np('x', 'sctp', { podSelector: {}, ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }] }] }),
    ]);
    expect(allowed(sctp, 80, 'SCTP')).toEqual(expected(() => true));
    expect(allowed(sctp, 80, 'TCP')).toEqual(expected((_, t) => ns(t) !== 'x'));
  });

  it('egress: policyTypes defaults to Ingress+Egress when egress rules exist', () => {
    const p = fromNetworkPolicy(
      np('x', 'e', {
        podSelector: {},
        egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
      }),
    );
    expect(p.ingress).toEqual([]);
    expect(p.egress).toHaveLength(1);
    const m = cluster([
      np('x', 'e', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
      }),
    ]);
    expect(allowed(m, 80)).toEqual(expected((f, t) => ns(f) !== 'x' || ns(t) === 'y'));
  });

  it('deny all egress leaves ingress open', () => {
    const m = cluster([np('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })]);
    expect(allowed(m, 80)).toEqual(expected((f) => ns(f) !== 'x'));
  });

  it('ipBlock with except, IPv4 and IPv6', () => {
    // 10.0.0.1-9 are the pods; allow 10.0.0.0/28 except 10.0.0.4/30 (pods 4..7: y/a y/b y/c z/a)
    const m = cluster([
      np('x', 'cidr', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/28', except: ['10.0.0.4/30'] } }] }],
      }),
    ]);
    const blocked = new Set(['y/a', 'y/b', 'y/c', 'z/a']);
    expect(allowed(m, 80)).toEqual(expected((f, t) => t !== 'x/a' || !blocked.has(f)));
    const v6 = cluster([
      np('x', 'cidr6', {
        podSelector: {},
        ingress: [{ from: [{ ipBlock: { cidr: 'fd00::/124', except: ['fd00::8/125'] } }] }],
      }),
    ]);
    const e = explain(v6, resolveEnd(v6, 'fd00::9'), resolveEnd(v6, 'fd00::1'), 80, 'TCP');
    expect(e.allowed).toBe(false);
    expect(explain(v6, resolveEnd(v6, 'fd00::4'), resolveEnd(v6, 'fd00::1'), 80, 'TCP').allowed).toBe(true);
  });

  it('union: two policies selecting one pod allow what either allows; explain names the rule', () => {
    const m = cluster([
      np('x', 'from-y', {
        podSelector: {},
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
      }),
      np('x', 'from-z', {
        podSelector: {},
        ingress: [{ ports: [{ port: 81 }] }, { from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }],
      }),
    ]);
    expect(allowed(m, 80)).toEqual(expected((f, t) => ns(t) !== 'x' || ns(f) !== 'x'));
    const e = explain(m, resolveEnd(m, 'z/a'), resolveEnd(m, 'x/a'), 80, 'TCP');
    expect(e.ingress.decidedBy).toEqual({ policy: 'x/from-z', direction: 'ingress', rule: 1 });
    expect(e.ingress.isolatedBy).toEqual(['x/from-y', 'x/from-z']);
  });

  it('namespace label change moves pods in and out of a namespaceSelector', () => {
    const pol = np('x', 'team', {
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }] }],
    });
    expect(allowed(cluster([pol]), 80)).toEqual(expected((_, t) => ns(t) !== 'x'));
    expect(allowed(cluster([pol], { nsLabels: { z: { team: 'blue' } } }), 80)).toEqual(
      expected((f, t) => ns(t) !== 'x' || ns(f) === 'z'),
    );
  });

  it('a node reaches its own pods whatever the policy; other nodes only through ipBlock', () => {
    const m = cluster([np('x', 'deny', { podSelector: {} })]);
    // x/a is on n1 (192.168.0.1), x/b on n2
    expect(explain(m, resolveEnd(m, '192.168.0.1'), resolveEnd(m, 'x/a'), 80, 'TCP').allowed).toBe(true);
    const other = explain(m, resolveEnd(m, '192.168.0.2'), resolveEnd(m, 'x/a'), 80, 'TCP');
    expect(other.allowed).toBe(false);
  });

  it('hostNetwork pods count as their node: not selected, not matched by pod selectors', () => {
    const pods = ALL.map((k, i) => pod(ns(k)!, name(k)!, i));
    pods.push({
      ...pod('x', 'host', 20, { hostNetwork: true, nodeName: 'n2' }),
      status: { phase: 'Running', podIP: '192.168.0.2' },
    });
    const m = cluster([np('x', 'same', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })], {
      pods,
    });
    expect(() => resolveEnd(m, 'x/host')).toThrow(/hostNetwork/);
    expect(explain(m, resolveEnd(m, '192.168.0.2'), resolveEnd(m, 'x/a'), 80, 'TCP').allowed).toBe(false);
  });

  it('problems are named by field and the broken rule allows nothing', () => {
    const p = fromNetworkPolicy(
      np('x', 'bad', {
        podSelector: {},
        ingress: [
          { from: [{ ipBlock: { cidr: '10.0.0.0/24', except: ['10.1.0.0/24'] } }] },
          { ports: [{ port: 'Bad_Name' }] },
        ],
      }),
    );
    expect(p.problems).toEqual([
      'spec.ingress[0].from[0].ipBlock: spec.ingress[0].from[0].ipBlock.except[0]: 10.1.0.0/24 is not inside 10.0.0.0/24',
      'spec.ingress[1].ports[0].port: "Bad_Name" is not a valid port name',
    ]);
    expect(p.ingress).toEqual([
      { peers: [], ports: [] },
      { peers: [], ports: [] },
    ]);
  });
});

// More cases named after upstream netpol e2e tests (test/e2e/network/netpol in Kubernetes).
describe('NetworkPolicy semantics: upstream netpol e2e cases', () => {
  it('an IP in both an ipBlock cidr and its except is allowed when another policy allows it', () => {
    // y/b is 10.0.0.5: excepted by one egress policy of x/a, allowed by a second one
    const except = np('x', 'cidr-except', {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/24', except: ['10.0.0.5/32'] } }] }],
    });
    const one = np('x', 'cidr-one', {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: '10.0.0.5/32' } }] }],
    });
    expect(allowed(cluster([except]), 80)).toEqual(expected((f, t) => f !== 'x/a' || t !== 'y/b'));
    expect(allowed(cluster([except, one]), 80)).toEqual(expected(() => true));
  });

  it('an allow-all ingress policy takes precedence over a deny-all one', () => {
    const m = cluster([
      np('x', 'deny', { podSelector: {} }),
      np('x', 'allow-all', { podSelector: {}, ingress: [{}] }),
    ]);
    expect(allowed(m, 80)).toEqual(expected(() => true));
    const empty = cluster([
      np('x', 'deny', { podSelector: {} }),
      np('x', 'empty-lists', { podSelector: {}, ingress: [{ from: [], ports: [] }] }),
    ]);
    expect(allowed(empty, 81, 'UDP')).toEqual(expected(() => true));
  });

  it('an allow-all egress policy takes precedence over a deny-all egress one', () => {
    const m = cluster([
      np('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] }),
      np('x', 'allow-egress', { podSelector: {}, policyTypes: ['Egress'], egress: [{}] }),
    ]);
    expect(allowed(m, 80)).toEqual(expected(() => true));
    // without policyTypes the same policy defaults to Ingress+Egress: x is then closed to ingress
    const defaulted = cluster([np('x', 'allow-egress', { podSelector: {}, egress: [{}] })]);
    expect(allowed(defaulted, 80)).toEqual(expected((_, t) => ns(t) !== 'x'));
  });

  it('egress is denied on the client side even when the server allows it', () => {
    const m = cluster([
      np('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] }),
      np('y', 'from-x', {
        podSelector: {},
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } } }] }],
      }),
    ]);
    expect(allowed(m, 80)).toEqual(expected((f, t) => ns(f) !== 'x' && (ns(t) !== 'y' || ns(f) === 'x')));
    const e = explain(m, resolveEnd(m, 'x/a'), resolveEnd(m, 'y/a'), 80, 'TCP');
    expect(e).toMatchObject({ allowed: false, ingress: { allowed: true }, egress: { allowed: false } });
  });

  it('policyTypes [Egress] ignores ingress rules: ingress stays open', () => {
    const m = cluster([
      np('x', 'egress-only', {
        podSelector: {},
        policyTypes: ['Egress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'nobody' } } }] }],
        egress: [{}],
      }),
    ]);
    expect(allowed(m, 80)).toEqual(expected(() => true));
  });

  it('ingress and egress of one pod are controlled independently (Ingress, Egress together)', () => {
    const m = cluster([
      np('x', 'both', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
        egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }],
      }),
    ]);
    expect(allowed(m, 80)).toEqual(
      expected((f, t) => (t !== 'x/a' || ns(f) === 'y') && (f !== 'x/a' || ns(t) === 'z')),
    );
  });

  it('egress on one named port: UDP serve-81-udp opens UDP 81 only', () => {
    const m = cluster([
      np('x', 'named-egress', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ ports: [{ port: 'serve-81-udp', protocol: 'UDP' }] }],
      }),
    ]);
    expect(allowed(m, 81, 'UDP')).toEqual(expected(() => true));
    expect(allowed(m, 80, 'UDP')).toEqual(expected((f) => ns(f) !== 'x'));
    expect(allowed(m, 81, 'TCP')).toEqual(expected((f) => ns(f) !== 'x'));
  });

  it('a finished pod is neither selected nor a peer', () => {
    const pods = ALL.map((k, i) => pod(ns(k)!, name(k)!, i));
    pods[3] = { ...pods[3]!, status: { ...pods[3]!.status, phase: 'Succeeded' } }; // y/a
    const m = cluster(
      [
        np('x', 'from-y', {
          podSelector: {},
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
        }),
      ],
      { pods },
    );
    expect(() => resolveEnd(m, 'y/a')).toThrow();
    // its old address is judged as an address outside every pod selector
    expect(explain(m, resolveEnd(m, '10.0.0.4'), resolveEnd(m, 'x/a'), 80, 'TCP').allowed).toBe(false);
  });
});

describe('nftables compilation', () => {
  const policies = [
    np('x', 'from-y', {
      podSelector: {},
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }],
          ports: [{ port: 'serve-80-tcp' }, { port: 81, protocol: 'UDP' }],
        },
      ],
    }),
    np('x', 'from-y-again', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
    }),
    np('y', 'egress', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/24', except: ['10.0.0.128/25'] } }] }],
    }),
  ];

  it('verdicts through maps keyed by pod address, one chain per policy combination', () => {
    const rs = compile(cluster(policies), 'n1');
    // n1 holds x/a (10.0.0.1), x/c (.3), y/b (.5), z/a (.7), z/c (.9)
    expect([...rs.sets.get('ingress4')!.elements].map((e) => e.split(' : ')[0])).toEqual([
      '10.0.0.1',
      '10.0.0.3',
    ]);
    expect([...rs.sets.get('egress4')!.elements].map((e) => e.split(' : ')[0])).toEqual(['10.0.0.5']);
    const xa = [...rs.sets.get('ingress4')!.elements][0]!.split('jump ')[1]!;
    const xc = [...rs.sets.get('ingress4')!.elements][1]!.split('jump ')[1]!;
    expect(xa).not.toBe(xc);
    expect(rs.chains.get(xa)).toHaveLength(3); // two policy jumps and the final drop
    // the same namespaceSelector in two policies is one set
    const peerSets = [...rs.sets.keys()].filter((n) => n.startsWith('p-'));
    expect(peerSets).toHaveLength(2); // one per family
    expect(rs.sets.get(peerSets[0]!)!.elements).toEqual(new Set(['10.0.0.4', '10.0.0.5', '10.0.0.6']));
    const block = [...rs.sets].find(([n]) => n.startsWith('b-'))![1];
    expect([...block.elements]).toEqual(['10.0.0.0-10.0.0.127']);
    expect(block.interval).toBe(true);
    const named = [...rs.sets].find(([n]) => n.startsWith('n-') && n.endsWith('-4'))![1];
    expect(named.elements.has('10.0.0.1 . tcp . 80')).toBe(true);
    const text = renderFull(rs);
    expect(text).toContain('ip saddr vmap @egress4');
    expect(text).toMatch(/th dport \{ 81 \} accept comment "x\/from-y ingress\[0\]"/);
    expect(stats(rs, 3).rules).toBeGreaterThan(0);
  });

  it('a node without selected pods programs nothing but the base chains', () => {
    const rs = compile(cluster([]), 'n1');
    expect([...rs.chains.keys()].sort()).toEqual(['egress', 'ingress']);
  });

  it('pod churn edits set and map elements only', () => {
    const before = cluster(policies);
    const pods = ALL.map((k, i) => pod(ns(k)!, name(k)!, i));
    pods.push(pod('y', 'd', 10)); // a new pod on n1 in y: egress-isolated, and a peer of x's policies
    const after = cluster(policies, { pods });
    const diff = renderDiff(compile(before, 'n1'), compile(after, 'n1'));
    const lines = diff.trim().split('\n');
    expect(lines.every((l) => l.startsWith('add element') || l.startsWith('delete element'))).toBe(true);
    expect(diff).toContain('10.0.0.11 : jump out-all-');
    expect(diff).toMatch(/add element inet trellis-policy p-\w+-4 \{ 10\.0\.0\.11 \}/);
    expect(renderDiff(compile(after, 'n1'), compile(before, 'n1'))).toMatch(
      /delete element inet trellis-policy egress4 \{ 10\.0\.0\.11 \}/,
    );
  });

  it('a policy change rewrites only its chains; deleting it removes chains and sets last', () => {
    const a = compile(cluster(policies), 'n1');
    const b = compile(cluster(policies.slice(0, 2)), 'n1');
    const diff = renderDiff(a, b).trim().split('\n');
    const firstTail = diff.findIndex((l) => l.startsWith('flush chain') || l.startsWith('delete chain'));
    expect(diff.slice(0, firstTail).every((l) => l.startsWith('delete element'))).toBe(true);
    expect(diff.at(-1)).toMatch(/^delete set /);
    expect(renderDiff(b, b)).toBe('');
  });
});

describe('explain: ICMP', () => {
  it('matches only rules without ports', () => {
    const m = cluster([
      np('x', 'ports', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 80 }] }] }),
      np('x', 'all', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{}] }),
    ]);
    expect(explain(m, resolveEnd(m, 'y/a'), resolveEnd(m, 'x/a'), 0, 'ICMP').allowed).toBe(false);
    expect(explain(m, resolveEnd(m, 'y/a'), resolveEnd(m, 'x/b'), 0, 'ICMP').allowed).toBe(true);
  });
});

describe('endpoints from pods', () => {
  const pod = (ip: string | undefined, labels: Record<string, string>): PodObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'shop', labels },
    spec: { nodeName: 'n1', containers: [] },
    status: { phase: 'Running', ...(ip ? { podIP: ip } : {}) },
  });

  it('follows a pod whose object a watch replaced (new address, new labels), and applies an in-flight ADD', () => {
    const before = pod(undefined, { app: 'a' });
    expect(endpointsFromPods([before])[0]!.addresses).toEqual([]);
    expect(endpointsFromPods([before], new Map([['shop/web', ['10.0.0.9']]]))[0]!.addresses).toEqual([
      '10.0.0.9',
    ]);
    expect(endpointsFromPods([before])[0]!.addresses).toEqual([]);
    const after = pod('10.0.0.7', { app: 'b' });
    expect(endpointsFromPods([after])[0]).toMatchObject({ addresses: ['10.0.0.7'], labels: { app: 'b' } });
  });
});
