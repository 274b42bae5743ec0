// `make bench-policy`: figures, not a test. (a) time to compile and program 1k and 10k
// NetworkPolicies over 5k pods (API objects; 50 on the measured node) into a throwaway netns with
// real nft, the ruleset's size, and the incremental cost of pod churn and of one policy change.
// Run as root under the e2e lock (the Makefile takes it): it creates and removes one netns.
import { spawnSync } from 'node:child_process';
import { labBench } from './policy-lab.ts';
import { performance } from 'node:perf_hooks';
import {
  buildModel,
  compile,
  endpointsFromPods,
  fromNetworkPolicy,
  renderDiff,
  renderFull,
  stats,
  type NetworkPolicy,
  type PodObject,
} from '../../src/policy/index.ts';

const NETNS = 'trellis-pbench';
const PODS = 5000;
const LOCAL = 50;
const NAMESPACES = 100;

function nft(script: string): number {
  const t0 = performance.now();
  const r = spawnSync('ip', ['netns', 'exec', NETNS, 'nft', '-f', '-'], { input: script, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nft failed: ${r.stderr.slice(0, 500)}`);
  return performance.now() - t0;
}

function pods(n: number): PodObject[] {
  return Array.from({ length: n }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `p${i}`,
      namespace: `ns${i % NAMESPACES}`,
      labels: { app: `app${i % 500}`, role: `r${i % 10}` },
    },
    spec: {
      nodeName: i % (PODS / LOCAL) === 0 ? 'n0' : `n${1 + (i % 99)}`,
      containers: [{ ports: [{ name: 'http', containerPort: 8080 + (i % 3), protocol: 'TCP' }] }],
    },
    status: { phase: 'Running', podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
  }));
}

function policies(n: number): NetworkPolicy[] {
  return Array.from({ length: n }, (_, i) => {
    const ns = `ns${i % NAMESPACES}`;
    const spec: NetworkPolicy['spec'] = {
      podSelector: { matchLabels: { app: `app${i % 500}` } },
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { team: `t${i % 20}` } },
              podSelector: { matchLabels: { role: `r${i % 10}` } },
            },
            { podSelector: { matchLabels: { role: `r${(i + 1) % 10}` } } },
          ],
          ports: [{ port: 80 }, { port: 'http' }, { protocol: 'UDP', port: 5000, endPort: 5010 }],
        },
      ],
    };
    if (i % 4 === 0) {
      spec.policyTypes = ['Ingress', 'Egress'];
      spec.egress = [
        {
          to: [
            {
              ipBlock: {
                cidr: `172.${16 + (i % 16)}.0.0/16`,
                except: [`172.${16 + (i % 16)}.${i % 256}.0/24`],
              },
            },
          ],
        },
      ];
    }
    return {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `np${i}`, namespace: ns },
      spec,
    };
  });
}

const namespaces = Array.from({ length: NAMESPACES }, (_, i) => ({
  metadata: { name: `ns${i}`, labels: { team: `t${i % 20}` } },
}));

function figure(label: string, value: string): void {
  process.stdout.write(`${label.padEnd(58)} ${value}\n`);
}

spawnSync('ip', ['netns', 'del', NETNS]);
const made = spawnSync('ip', ['netns', 'add', NETNS]);
if (made.status !== 0) {
  process.stderr.write(`cannot create a netns (run as root): ${made.stderr}\n`);
  process.exit(1);
}
try {
  const allPods = pods(PODS);
  process.stdout.write(`policy benchmark: ${PODS} pods (${LOCAL} on the node), ${NAMESPACES} namespaces\n\n`);
  for (const n of [1000, 10000]) {
    const pols = policies(n);
    const t0 = performance.now();
    const model = buildModel({ pods: allPods, namespaces, policies: pols });
    const t1 = performance.now();
    const rs = compile(model, 'n0');
    const t2 = performance.now();
    const script = renderFull(rs);
    const t3 = performance.now();
    const applyMs = nft(script);
    const s = stats(rs, n);
    figure(`${n} policies: model (API objects -> model)`, `${(t1 - t0).toFixed(0)} ms`);
    figure(`${n} policies: compile + render`, `${(t3 - t1).toFixed(0)} ms (compile ${(t2 - t1).toFixed(0)})`);
    figure(`${n} policies: nft -f (one transaction, whole table)`, `${applyMs.toFixed(0)} ms`);
    figure(`${n} policies: total to programmed`, `${(t3 - t0 + applyMs).toFixed(0)} ms`);
    figure(
      `${n} policies: ruleset size`,
      `${s.chains} chains, ${s.rules} rules, ${s.sets} sets, ${s.elements} elements, ${(script.length / 1024).toFixed(0)} KiB`,
    );
    // pod churn: a new pod on the node (same labels as an existing one) -> elements only
    const churn = [
      ...allPods,
      {
        ...allPods[0]!,
        metadata: { ...allPods[0]!.metadata, name: 'new' },
        status: { phase: 'Running', podIP: '10.200.0.1' },
      },
    ];
    const c0 = performance.now();
    // as the agent does: policies stay converted, only the endpoints are rebuilt
    const m2 = { ...model, endpoints: endpointsFromPods(churn) };
    const rs2 = compile(m2, 'n0');
    const diff = renderDiff(rs, rs2);
    const c1 = performance.now();
    const churnMs = nft(diff);
    figure(
      `${n} policies: pod add (recompile + diff, nft)`,
      `${(c1 - c0).toFixed(0)} ms + ${churnMs.toFixed(1)} ms, ${diff.trim().split('\n').length} nft commands, rules touched: ${/add rule|flush chain/.test(diff) ? 'yes' : 'none'}`,
    );
    // one policy changed (its port)
    const changed = pols.map((p, i) =>
      i === 0 ? { ...p, spec: { ...p.spec, ingress: [{ ports: [{ port: 443 }] }] } } : p,
    );
    const p0 = performance.now();
    const rs3 = compile(
      { ...m2, policies: m2.policies.map((p) => (p.key === 'ns0/np0' ? fromNetworkPolicy(changed[0]!) : p)) },
      'n0',
    );
    const diff3 = renderDiff(rs2, rs3);
    const p1 = performance.now();
    const polMs = nft(diff3);
    figure(
      `${n} policies: one policy update (recompile + diff, nft)`,
      `${(p1 - p0).toFixed(0)} ms + ${polMs.toFixed(1)} ms`,
    );
    nft(`delete table inet ${rs.table}\n`);
    process.stdout.write('\n');
  }
} finally {
  spawnSync('ip', ['netns', 'del', NETNS]);
}

/** Whether this kernel takes an nft `queue` rule: undefined if so, else nft's error. */
function queueStatement(): string | undefined {
  spawnSync('ip', ['netns', 'add', NETNS]);
  try {
    const r = spawnSync('ip', ['netns', 'exec', NETNS, 'nft', '-f', '-'], {
      input:
        'table inet q {\n chain c {\n  type filter hook forward priority 0; policy accept;\n  queue num 0 bypass\n }\n}\n',
      encoding: 'utf8',
    });
    return r.status === 0 ? undefined : r.stderr.trim().split('\n')[0];
  } finally {
    spawnSync('ip', ['netns', 'del', NETNS]);
  }
}

// (a)-(c) side by side in a lab (TRELLIS_BENCH_POLICY_LAB=0 skips them)
if (process.env.TRELLIS_BENCH_POLICY_LAB !== '0') {
  const queue = queueStatement();
  process.stdout.write(
    '(a)-(c) side by side in a two-node lab (vxlan), ours then the peer against the same API server\n' +
      'peer: kube-router v2.1.0 network policy controller alone (iptables + ipset), because\n' +
      'sigs.k8s.io/kube-network-policies v0.8.0 sends packets to userspace with the nftables `queue`\n' +
      `statement, and this kernel ${queue === undefined ? 'accepts it now: kube-network-policies could be tried here' : `refuses it (checked just now in a scratch netns: ${queue})`}\n`,
  );
  await labBench({ namespaces, pods: pods(PODS), policies: policies(10000) }, figure);
}
