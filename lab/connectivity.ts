// `trellis connectivity-test`: every pod to every other pod, every pod to every node, every node to
// every pod, and every pod to the outside host, over TCP (probe server) and ICMP (ping). The
// receiver's view of the source is checked: pod-to-pod and pod-to-node must show the sender's pod
// IP (no NAT), pod-to-outside must show the pod's node IP (masquerade). One prober process per
// sender runs inside the sender's netns. Where NetworkPolicies deny a flow, the expectation is the
// verdict `policy explain` predicts from the same model the agents program: a cell passes when the
// packets did what the prediction says, and any disagreement fails the test.
import { join } from 'node:path';
import type { KubeClient } from '../src/kube/client.ts';
import { explain, resolveEnd, type PolicyModel } from '../src/policy/index.ts';
import { planNetwork } from './connectivity-network.ts';
import { labPods, type PodView } from './podcmd.ts';
import { labPolicyModel } from './policy.ts';
import { PROBE_PORT } from './probe.ts';
import type { ProbeOutcome, ProbeTarget } from './prober.ts';
import { inNetns, runAsync } from './sh.ts';
import { NODE_BIN, REPO, type LabState } from './state.ts';

export interface Endpoint {
  id: string;
  kind: 'pod' | 'node' | 'outside';
  netns: string;
  ip: string;
  node?: string;
  /** probe server port when not the default (hostNetwork probes on a real cluster) */
  port?: number;
}

export interface Cell {
  from: string;
  to: string;
  tcp: boolean;
  icmp: boolean;
  sawSource?: string;
  expectedSource?: string;
  /** What policy explain predicts for TCP to the probe port and for ICMP. */
  expectTcp: boolean;
  expectIcmp: boolean;
  /** The deciding policy text when a prediction is a denial. */
  policy?: string;
  ok: boolean;
  error?: string;
}

export interface ConnectivityReport {
  ok: boolean;
  endpoints: Endpoint[];
  cells: Cell[];
  failures: Cell[];
}

export interface Expectation {
  target: Endpoint;
  expectedSource?: string;
  expectTcp?: boolean;
  expectIcmp?: boolean;
  policy?: string;
}

/** Adds the predicted verdicts (TCP to the probe port, ICMP) to each expectation. */
export function predict(model: PolicyModel, sender: Endpoint, exps: Expectation[]): void {
  for (const e of exps) {
    try {
      const from = resolveEnd(model, sender.kind === 'pod' ? sender.id : sender.ip);
      const to = resolveEnd(model, e.target.kind === 'pod' ? e.target.id : e.target.ip);
      const tcp = explain(model, from, to, PROBE_PORT, 'TCP');
      const icmp = explain(model, from, to, 0, 'ICMP');
      e.expectTcp = tcp.allowed;
      e.expectIcmp = icmp.allowed;
      const denied = !tcp.allowed ? tcp : !icmp.allowed ? icmp : undefined;
      if (denied) e.policy = (!denied.egress.allowed ? denied.egress : denied.ingress).reason;
    } catch {
      // an endpoint the model does not know (e.g. a pod without an IP yet): expect connectivity
    }
  }
}

export function plan(
  state: LabState,
  pods: PodView[],
): { endpoints: Endpoint[]; senders: [Endpoint, Expectation[]][] } {
  const podEps: Endpoint[] = pods
    .filter((p) => p.ip && p.phase === 'Running')
    .map((p) => ({ id: `${p.namespace}/${p.name}`, kind: 'pod', netns: p.netns, ip: p.ip, node: p.node }));
  const nodeEps: Endpoint[] = state.nodes.map((n) => ({
    id: n.name,
    kind: 'node',
    netns: n.netns,
    ip: n.ip,
    node: n.name,
  }));
  const outside: Endpoint = {
    id: 'outside',
    kind: 'outside',
    netns: state.outside.netns,
    ip: state.outside.ip,
  };
  const nodeIp = new Map(state.nodes.map((n) => [n.name, n.ip]));
  const senders: [Endpoint, Expectation[]][] = [];
  for (const p of podEps) {
    const exp: Expectation[] = [
      ...podEps.filter((q) => q !== p).map((q) => ({ target: q, expectedSource: p.ip })),
      ...nodeEps.map((n) => ({ target: n, expectedSource: p.ip })),
      { target: outside, expectedSource: nodeIp.get(p.node ?? '') },
    ];
    senders.push([p, exp]);
  }
  // what a node's own traffic looks like to a pod depends on the backend: reachability only
  for (const n of nodeEps) senders.push([n, podEps.map((q) => ({ target: q }))]);
  return { endpoints: [...podEps, ...nodeEps, outside], senders };
}

async function probeFrom(sender: Endpoint, exps: Expectation[]): Promise<Cell[]> {
  const targets: ProbeTarget[] = exps.map((e) => ({ id: e.target.id, ip: e.target.ip }));
  const out = await runAsync(
    inNetns(sender.netns, [NODE_BIN, join(REPO, 'lab', 'prober.ts'), JSON.stringify(targets)]),
    {
      timeoutMs: 60_000,
    },
  );
  let outcomes: ProbeOutcome[] = [];
  try {
    outcomes = JSON.parse(out.stdout) as ProbeOutcome[];
  } catch {
    return failedCells(sender, exps, `prober failed in ${sender.netns}: ${out.stderr.trim().slice(0, 300)}`);
  }
  return toCells(sender, exps, outcomes);
}

/** Every expectation of a sender failed for one reason (its prober could not run). */
export function failedCells(sender: Endpoint, exps: Expectation[], error: string): Cell[] {
  return exps.map((e) => ({
    from: sender.id,
    to: e.target.id,
    tcp: false,
    icmp: false,
    expectTcp: e.expectTcp ?? true,
    expectIcmp: e.expectIcmp ?? true,
    ok: false,
    error,
  }));
}

/** Judges a sender's prober outcomes against what each target should have seen. */
export function toCells(sender: Endpoint, exps: Expectation[], outcomes: ProbeOutcome[]): Cell[] {
  return exps.map((e, i) => {
    const o = outcomes[i];
    const tcp = !!o?.tcp?.ok;
    const icmp = !!o?.icmp?.ok;
    const expectTcp = e.expectTcp ?? true;
    const expectIcmp = e.expectIcmp ?? true;
    const sawSource = o?.tcp?.answer?.sawSource;
    const sourceOk = !e.expectedSource || sawSource === e.expectedSource;
    const errors = [
      tcp !== expectTcp
        ? tcp
          ? `tcp: connected, but policy explain predicts denied (${e.policy ?? ''})`
          : `tcp: ${o?.tcp?.error ?? 'no result'}`
        : '',
      icmp !== expectIcmp
        ? icmp
          ? `icmp: answered, but policy explain predicts denied (${e.policy ?? ''})`
          : `icmp: ${o?.icmp?.error ?? 'no result'}`
        : '',
      tcp && !sourceOk ? `receiver saw ${sawSource}, expected ${e.expectedSource}` : '',
    ].filter(Boolean);
    const cell: Cell = {
      from: sender.id,
      to: e.target.id,
      tcp,
      icmp,
      expectTcp,
      expectIcmp,
      ok: tcp === expectTcp && icmp === expectIcmp && (!tcp || sourceOk),
    };
    if (e.policy) cell.policy = e.policy;
    if (sawSource) cell.sawSource = sawSource;
    if (e.expectedSource) cell.expectedSource = e.expectedSource;
    if (errors.length) cell.error = errors.join('; ');
    return cell;
  });
}

export async function connectivityTest(
  kube: KubeClient,
  state: LabState,
  concurrency = 4,
  /** An extra network (NAD): test pod-to-pod over it instead of the pod network. */
  network?: string,
): Promise<ConnectivityReport> {
  // On an extra network, MultiNetworkPolicy is not modelled here: every flow is expected to pass.
  if (network) {
    const { endpoints, senders } = await planNetwork(kube, state, network);
    return runPlan(endpoints, senders, concurrency);
  }
  const [pods, model] = await Promise.all([labPods(kube, state), labPolicyModel(kube, state)]);
  const { endpoints, senders } = plan(state, pods);
  for (const [sender, exps] of senders) predict(model, sender, exps);
  return runPlan(endpoints, senders, concurrency);
}

async function runPlan(
  endpoints: Endpoint[],
  senders: [Endpoint, Expectation[]][],
  concurrency: number,
): Promise<ConnectivityReport> {
  const cells: Cell[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, senders.length) }, async () => {
      while (next < senders.length) {
        const [sender, exps] = senders[next++];
        cells.push(...(await probeFrom(sender, exps)));
      }
    }),
  );
  const order = new Map(endpoints.map((e, i) => [e.id, i]));
  cells.sort(
    (a, b) =>
      (order.get(a.from) ?? 0) - (order.get(b.from) ?? 0) || (order.get(a.to) ?? 0) - (order.get(b.to) ?? 0),
  );
  const failures = cells.filter((c) => !c.ok);
  return { ok: failures.length === 0 && cells.length > 0, endpoints, cells, failures };
}

/**
 * A matrix: rows are senders, columns targets; ✓ connected as predicted, ✗ denied by policy as
 * predicted; on a disagreement T (tcp) / I (icmp) differ from the prediction, S wrong source.
 */
export function renderMatrix(r: ConnectivityReport): string {
  const ids = r.endpoints.map((e, i) => ({
    e,
    short: e.kind === 'pod' ? `p${i + 1}` : e.id === 'outside' ? 'out' : e.id.replace('node', 'n'),
  }));
  const short = new Map(ids.map((x) => [x.e.id, x.short]));
  const lines: string[] = [];
  lines.push('endpoints:');
  for (const { e, short: s } of ids)
    lines.push(
      `  ${s.padEnd(4)} ${e.kind.padEnd(8)} ${e.id.padEnd(32)} ${e.ip}${e.node && e.kind === 'pod' ? ` on ${e.node}` : ''}`,
    );
  const cell = new Map(r.cells.map((c) => [`${c.from}|${c.to}`, c]));
  const senders = ids.filter(({ e }) => r.cells.some((c) => c.from === e.id));
  const w = 4;
  lines.push('');
  lines.push(`${'from\\to'.padEnd(8)}${ids.map(({ short: s }) => s.padStart(w)).join('')}`);
  for (const { e, short: s } of senders) {
    const row = ids.map(({ e: t }) => {
      const c = cell.get(`${e.id}|${t.id}`);
      if (!c) return '·'.padStart(w);
      if (c.ok) return (c.expectTcp && c.expectIcmp ? '✓' : '✗').padStart(w);
      return (
        (c.tcp === c.expectTcp ? '' : 'T') +
        (c.icmp === c.expectIcmp ? '' : 'I') +
        (c.tcp && c.sawSource !== c.expectedSource ? 'S' : '')
      ).padStart(w);
    });
    lines.push(`${s.padEnd(8)}${row.join('')}`);
  }
  lines.push('');
  lines.push(
    `${r.cells.length - r.failures.length}/${r.cells.length} checks passed (✓ connected, ✗ denied by policy as predicted; T tcp, I icmp disagree with policy explain; S receiver saw the wrong source)`,
  );
  for (const f of r.failures)
    lines.push(`  FAIL ${short.get(f.from)} -> ${short.get(f.to)} (${f.from} -> ${f.to}): ${f.error ?? ''}`);
  return lines.join('\n');
}
