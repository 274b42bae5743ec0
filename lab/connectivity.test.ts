// The connectivity test's expectations and its matrix, checked without a lab: what source each
// receiver must see, and that a failure shows up in the matrix and the failure list.
import { describe, expect, it } from 'vitest';
import { buildModel } from '../src/policy/index.ts';
import { plan, predict, renderMatrix, type ConnectivityReport } from './connectivity.ts';
import type { PodView } from './podcmd.ts';
import { planLab } from './state.ts';

const state = planLab({ prefix: 'trl', subnet: '198.18.0', nodes: 2, backend: 'vxlan', stateDir: '/s' });
const pod = (name: string, node: string, ip: string): PodView => ({
  namespace: 'default',
  name,
  node,
  ip,
  ips: [ip],
  phase: 'Running',
  netns: `trl-pod-${name}`,
  hostPorts: [],
});

describe('connectivity plan', () => {
  const pods = [
    pod('a', 'node1', '10.244.0.2'),
    pod('b', 'node2', '10.244.1.2'),
    { ...pod('c', 'node2', ''), phase: 'Pending' },
  ];
  const { senders } = plan(state, pods);
  const exp = (from: string, to: string) =>
    senders.find(([s]) => s.id === from)?.[1].find((e) => e.target.id === to);

  it('expects the sender pod IP at pods and nodes, and the node IP at the outside host', () => {
    expect(exp('default/a', 'default/b')?.expectedSource).toBe('10.244.0.2');
    expect(exp('default/a', 'node2')?.expectedSource).toBe('10.244.0.2');
    expect(exp('default/b', 'outside')?.expectedSource).toBe('198.18.0.12');
  });
  it('checks only reachability from nodes, and skips pods without an IP', () => {
    expect(exp('node1', 'default/a')).toEqual({ target: expect.objectContaining({ id: 'default/a' }) });
    expect(senders.some(([s]) => s.id === 'default/c')).toBe(false);
    expect(exp('default/a', 'default/a')).toBeUndefined();
  });
});

describe('renderMatrix', () => {
  it('marks each kind of failure and lists it', () => {
    const { endpoints } = plan(state, [pod('a', 'node1', '10.244.0.2'), pod('b', 'node2', '10.244.1.2')]);
    const r: ConnectivityReport = {
      ok: false,
      endpoints,
      cells: [
        {
          from: 'default/a',
          to: 'default/b',
          tcp: true,
          icmp: true,
          expectTcp: true,
          expectIcmp: true,
          ok: true,
          sawSource: '10.244.0.2',
          expectedSource: '10.244.0.2',
        },
        {
          from: 'default/b',
          to: 'default/a',
          tcp: true,
          icmp: true,
          expectTcp: true,
          expectIcmp: true,
          ok: false,
          sawSource: '198.18.0.12',
          expectedSource: '10.244.1.2',
          error: 'receiver saw 198.18.0.12',
        },
        {
          from: 'default/a',
          to: 'outside',
          tcp: false,
          icmp: false,
          expectTcp: true,
          expectIcmp: true,
          ok: false,
          error: 'tcp: timeout',
        },
      ],
      failures: [],
    };
    r.failures = r.cells.filter((c) => !c.ok);
    const text = renderMatrix(r);
    expect(text).toContain('1/3 checks passed');
    expect(text).toMatch(/^p2 +S +· +· +· +·$/m);
    expect(text).toMatch(/^p1 +· +✓ +· +· +TI$/m);
    expect(text).toContain('FAIL p2 -> p1 (default/b -> default/a): receiver saw 198.18.0.12');
  });
});

describe('policy predictions', () => {
  const pods = [pod('a', 'node1', '10.244.0.2'), pod('b', 'node2', '10.244.1.2')];
  const model = buildModel({
    pods: pods.map((p) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: 'default', labels: { app: p.name } },
      spec: { nodeName: p.node },
      status: { phase: 'Running', podIP: p.ip },
    })),
    namespaces: [{ metadata: { name: 'default' } }],
    policies: [
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'only-a', namespace: 'default' },
        spec: {
          podSelector: { matchLabels: { app: 'b' } },
          ingress: [{ from: [{ podSelector: { matchLabels: { app: 'a' } } }], ports: [{ port: 80 }] }],
        },
      },
    ],
    nodes: state.nodes.map((n) => ({
      metadata: { name: n.name },
      status: { addresses: [{ type: 'InternalIP', address: n.ip }] },
    })),
  });
  const { senders } = plan(state, pods);
  for (const [s, exps] of senders) predict(model, s, exps);
  const exp = (from: string, to: string) =>
    senders.find(([s]) => s.id === from)?.[1].find((e) => e.target.id === to);

  it('predicts denials from the policy and allows the node its own pods', () => {
    // the policy opens port 80 only: the probe port and ICMP are denied to b, except from b's node
    expect(exp('default/a', 'default/b')).toMatchObject({ expectTcp: false, expectIcmp: false });
    expect(exp('default/a', 'default/b')?.policy).toContain('default/only-a');
    expect(exp('default/b', 'default/a')).toMatchObject({ expectTcp: true, expectIcmp: true });
    expect(exp('node2', 'default/b')).toMatchObject({ expectTcp: true, expectIcmp: true });
    expect(exp('node1', 'default/b')).toMatchObject({ expectTcp: false, expectIcmp: false });
  });

  it('shows agreeing denials as ✗ and a disagreement as a failure', () => {
    const { endpoints } = plan(state, pods);
    const cells = [
      {
        from: 'default/a',
        to: 'default/b',
        tcp: false,
        icmp: false,
        expectTcp: false,
        expectIcmp: false,
        ok: true,
      },
      {
        from: 'default/b',
        to: 'default/a',
        tcp: false,
        icmp: true,
        expectTcp: true,
        expectIcmp: true,
        ok: false,
        error: 'tcp: timeout',
      },
    ];
    const text = renderMatrix({ ok: false, endpoints, cells, failures: [cells[1]!] });
    expect(text).toMatch(/^p1 +· +✗/m);
    expect(text).toMatch(/^p2 +T +·/m);
  });
});
