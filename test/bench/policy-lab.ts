// `make bench-policy` parts (b)-(d), in one two-node lab (vxlan) against one API server: (b) time
// from a policy create, delete or label change to enforcement seen by probes (a connect attempt
// every 5 ms from a pod on node 0 to a pod on node 1), p50/p99 over 100 changes; (c) iperf3 TCP
// throughput between those pods with no policy and with 10k policies (+5k pod objects); (a) in the
// lab: an enforcer started with the 10k policies present, time until it has programmed them. Each
// is measured for our agent, then for the peer (kube-router's network policy controller, run as
// each node's policy agent while our agents run with TRELLIS_POLICY=off), and printed with the
// ratio ours/peer. Figures, not a test.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { killAgent, startAgent } from '../../lab/agents.ts';
import { down } from '../../lab/down.ts';
import { createPod, type PodView } from '../../lab/podcmd.ts';
import { NODE_BIN, REPO, type LabNode } from '../../lab/state.ts';
import { up } from '../../lab/up.ts';
import { NodeNetworkStatusResource } from '../../src/api/group.ts';
import type { NodeNetworkStatus } from '../../src/api/nodestatus.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { isApiError } from '../../src/kube/errors.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import type { NetworkPolicy, PodObject } from '../../src/policy/index.ts';

const STATE_DIR = join(REPO, '.cache', 'lab-pbench');
const PREFIX = 'tpb';
const SUBNET = '198.18.26';
const CHANGES = 100;
const PROBE_INTERVAL_MS = 5;
const PROBE_TIMEOUT_MS = 150;
/** Consecutive attempts with the new outcome that count as "enforced". */
const STABLE = 15;
const CHANGE_LIMIT_MS = 15_000;
/** How long the peer may take for its first sync of the 10k policies. @default 180 s */
const PEER_LIMIT_S = Number(process.env.TRELLIS_BENCH_PEER_LIMIT_S ?? 180);

/** One implementation's figures, printed as soon as they are measured. */
function printOne(name: string, f: ImplFigures, policies: number, say: Say): void {
  say(
    `(b) ${name}: changes enforced`,
    `${f.changeMs.length}/${CHANGES} (not within ${CHANGE_LIMIT_MS / 1000} s: ${f.notEnforced})`,
  );
  say(
    `(b) ${name}: change -> enforced, p50 / p99`,
    `${pct(f.changeMs, 0.5).toFixed(0)} / ${pct(f.changeMs, 0.99).toFixed(0)} ms`,
  );
  say(
    `(c) ${name}: iperf3 across nodes, none / ${policies} policies`,
    `${f.gbitNone.toFixed(2)} / ${f.gbit10k.toFixed(2)} Gbit/s (${(f.gbit10k / f.gbitNone).toFixed(3)}x)`,
  );
  say(
    `(a) ${name}: lab, enforcer start -> ${policies} programmed`,
    `${f.startToProgrammedMs.toFixed(0)} ms (sync ${f.syncMs.toFixed(0)} ms)`,
  );
}

export interface LabLoad {
  namespaces: { metadata: { name: string; labels: Record<string, string> } }[];
  pods: PodObject[];
  policies: NetworkPolicy[];
}

interface ImplFigures {
  changeMs: number[];
  notEnforced: number;
  gbitNone: number;
  gbit10k: number;
  startToProgrammedMs: number;
  syncMs: number;
}

type Say = (label: string, value: string) => void;

function kubeRouterBinary(): string {
  return execFileSync('nice', ['-n', '10', 'bash', join(REPO, 'hack/build-kube-router.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .at(-1)!;
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

const pct = (v: number[], p: number): number => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)] ?? NaN;
};

/** The probe loop of one sender: attempts as [start ms, connected]. */
class ProbeLoop {
  readonly attempts: [number, boolean][] = [];
  private readonly child: ChildProcess;
  constructor(from: PodView, ip: string, port: number) {
    this.child = spawn(
      'ip',
      [
        'netns',
        'exec',
        from.netns,
        NODE_BIN,
        join(REPO, 'test/bench/policy-probe-loop.ts'),
        ip,
        String(port),
        String(PROBE_INTERVAL_MS),
        String(PROBE_TIMEOUT_MS),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        const [t, ok] = l.split(' ');
        this.attempts.push([Number(t), ok === '1']);
      }
    });
  }
  /** ms from t0 to the first attempt of a run of STABLE attempts that all see `want`. */
  async enforced(t0: number, want: boolean): Promise<number | undefined> {
    const limit = t0 + CHANGE_LIMIT_MS;
    for (;;) {
      await sleep(20);
      const complete = performance.timeOrigin + performance.now() - PROBE_TIMEOUT_MS - 30;
      const seen = this.attempts.filter(([t]) => t >= t0 && t <= complete).sort((a, b) => a[0] - b[0]);
      let run = 0;
      for (let i = seen.length - 1; i >= 0 && seen[i]![1] === want; i--) run++;
      if (run >= STABLE) return seen[seen.length - run]![0] - t0;
      if (complete > limit) return undefined;
    }
  }
  stop(): void {
    this.child.kill('SIGTERM');
  }
}

const now = (): number => performance.timeOrigin + performance.now();

function iperf(server: PodView, client: PodView): number {
  const srv = spawn('ip', ['netns', 'exec', server.netns, 'iperf3', '-s', '-1', '-p', '5201'], {
    stdio: 'ignore',
  });
  try {
    spawnSync('sleep', ['0.5']);
    const r = spawnSync(
      'ip',
      ['netns', 'exec', client.netns, 'iperf3', '-c', server.ip, '-p', '5201', '-t', '5', '-J'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    const out = JSON.parse(r.stdout || '{}') as {
      end?: { sum_received?: { bits_per_second?: number } };
      error?: string;
    };
    const bps = out.end?.sum_received?.bits_per_second;
    if (!bps) throw new Error(`iperf3 failed: ${out.error ?? r.stderr}`);
    return bps / 1e9;
  } finally {
    srv.kill();
  }
}

export async function labBench(load: LabLoad, say: Say): Promise<void> {
  const kr = kubeRouterBinary();
  await down({ stateDir: STATE_DIR, prefix: PREFIX });
  const state = await up({ nodes: 2, backend: 'vxlan', stateDir: STATE_DIR, prefix: PREFIX, subnet: SUBNET });
  const kube = await KubeClient.fromKubeconfig(state.kubeconfig);
  const [n0, n1] = [state.nodes[0]!, state.nodes[1]!];
  const krProcs: ChildProcess[] = [];
  try {
    for (const ns of load.namespaces)
      await kube.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', ...ns });
    const server = await createPod(kube, state, {
      name: 'server',
      namespace: 'ns0',
      node: n1.name,
      labels: { app: 'app0', bench: 'server' },
    });
    const client = await createPod(kube, state, {
      name: 'client',
      namespace: 'ns1',
      node: n0.name,
      labels: { bench: 'client' },
    });

    const policy = (name: string, spec: NetworkPolicy['spec']): KubeObject => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace: 'ns0' },
      spec,
    });
    const deny = policy('deny', { podSelector: { matchLabels: { bench: 'server' } } });
    const fromRole = policy('from-role', {
      podSelector: { matchLabels: { bench: 'server' } },
      ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: 'client' } } }] }],
    });
    const label = (role: string | null) =>
      kube.mergePatch(Builtin.Pod, 'client', { metadata: { labels: { role } } }, 'ns1');
    const del = (name: string) => kube.delete(Builtin.NetworkPolicy, name, 'ns0');
    const steps: [string, () => Promise<unknown>, boolean][] = [
      ['create deny', () => kube.create(Builtin.NetworkPolicy, deny), false],
      ['delete deny', () => del('deny'), true],
      ['create from-role', () => kube.create(Builtin.NetworkPolicy, fromRole), false],
      ['label client role=client', () => label('client'), true],
      ['unlabel client', () => label(null), false],
      ['delete from-role', () => del('from-role'), true],
    ];

    /** (b): 100 changes, each timed until the probes see it. */
    async function changes(): Promise<{ ms: number[]; missed: number }> {
      const loop = new ProbeLoop(client, server.ip, 80);
      const ms: number[] = [];
      let missed = 0;
      try {
        await sleep(500);
        for (let i = 0; i < CHANGES; i++) {
          const [, act, want] = steps[i % steps.length]!;
          const t0 = now();
          await act();
          const d = await loop.enforced(t0, want);
          if (d === undefined) missed++;
          else ms.push(d);
        }
        // leave no policy behind (a partial cycle)
        for (const n of ['deny', 'from-role'])
          await del(n).catch((err: unknown) => {
            if (!isApiError(err, 404)) throw err;
          });
        await label(null);
      } finally {
        loop.stop();
      }
      return { ms, missed };
    }

    const allowClient = policy('allow-client', {
      podSelector: { matchLabels: { bench: 'server' } },
      ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { bench: 'client' } } }] }],
    });
    async function loadObjects(): Promise<number> {
      const t0 = performance.now();
      await kube.create(Builtin.NetworkPolicy, allowClient);
      await pool(load.pods, 16, async (p) => {
        await kube.create(Builtin.Pod, {
          ...p,
          metadata: { ...p.metadata, labels: { ...p.metadata.labels, fake: '1' } },
          spec: {
            ...p.spec,
            containers: (p.spec?.containers ?? []).map((c, i) => ({ name: `c${i}`, image: 'none', ...c })),
          },
        } as KubeObject);
        await kube.mergePatch(
          Builtin.Pod,
          p.metadata.name,
          { status: { ...p.status, hostIP: `10.254.0.${1 + (p.metadata.name.length % 200)}` } },
          p.metadata.namespace,
          'status',
        );
      });
      await pool(load.policies, 16, (np) => kube.create(Builtin.NetworkPolicy, np as KubeObject));
      return performance.now() - t0;
    }
    async function unloadObjects(): Promise<void> {
      for (const ns of load.namespaces) {
        const n = ns.metadata.name;
        await kube.request('DELETE', `/apis/networking.k8s.io/v1/namespaces/${n}/networkpolicies`);
        await kube.request('DELETE', `/api/v1/namespaces/${n}/pods`, undefined, undefined, {
          labelSelector: 'fake=1',
          gracePeriodSeconds: 0,
        });
      }
    }

    const policyStatus = async (node: LabNode) =>
      (await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, node.name)).status?.policy;
    /** Waits for a sync after `after` with `policies`; answers [its end (epoch ms), its duration]. */
    async function oursProgrammed(node: LabNode, after: string, policies: number): Promise<[number, number]> {
      for (const deadline = Date.now() + 300_000; Date.now() < deadline; await sleep(50)) {
        const st = await policyStatus(node);
        if (st?.synced && (st.lastSyncTime ?? '') > after && (st.policies ?? 0) >= policies)
          return [Date.parse(st.lastSyncTime), st.lastSyncMilliseconds];
      }
      throw new Error(`our agent on ${node.name} did not program ${policies} policies within 300 s`);
    }

    // ---- ours ------------------------------------------------------------------------------
    const ours: Partial<ImplFigures> = {};
    say('trellis: (b) 100 changes', 'running');
    const b1 = await changes();
    ours.changeMs = b1.ms;
    ours.notEnforced = b1.missed;
    ours.gbitNone = iperf(server, client);
    const loadMs = await loadObjects();
    say(
      `objects: ${load.pods.length} pods + ${load.policies.length + 1} policies created`,
      `${(loadMs / 1000).toFixed(0)} s`,
    );
    await oursProgrammed(n1, '', load.policies.length + 1);
    ours.gbit10k = iperf(server, client);
    // (a) in the lab: a restarted agent, the policies already there
    killAgent(state, n1);
    const s0 = Date.now();
    await startAgent(kube, state, n1);
    const [end, took] = await oursProgrammed(n1, new Date(s0).toISOString(), load.policies.length + 1);
    ours.syncMs = took;
    ours.startToProgrammedMs = end - s0;
    printOne('ours', ours as ImplFigures, load.policies.length, say);

    // ---- the peer: kube-router's netpol controller in place of ours ------------------------
    const peer: Partial<ImplFigures> = {};
    try {
      for (const n of state.nodes) {
        killAgent(state, n);
        await startAgent(kube, state, n, { TRELLIS_POLICY: 'off' });
        spawnSync('ip', ['netns', 'exec', n.netns, 'nft', 'delete', 'table', 'inet', 'trellis-policy']);
      }
      const krLog = (n: LabNode) => join(state.stateDir, 'nodes', n.name, 'kube-router.log');
      const startKr = (n: LabNode): ChildProcess => {
        // argv, no shell: the log is appended through a file descriptor handed to the child
        const log = openSync(krLog(n), 'a');
        const p = spawn(
          'ip',
          [
            'netns',
            'exec',
            n.netns,
            kr,
            `--kubeconfig=${state.kubeconfig}`,
            `--hostname-override=${n.name}`,
            '--run-router=false',
            '--run-service-proxy=false',
            '--run-firewall=true',
            '--enable-cni=false',
            '--metrics-port=0',
            '--health-port=0',
            '--v=1',
          ],
          { stdio: ['ignore', log, log] },
        );
        closeSync(log);
        krProcs.push(p);
        return p;
      };
      const syncs = (n: LabNode): number[] => {
        let text = '';
        try {
          text = readFileSync(krLog(n), 'utf8');
        } catch {
          return [];
        }
        return [...text.matchAll(/sync iptables took ([\d.]+)(ms|s|µs)/g)].map(
          (m) => Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'µs' ? 0.001 : 1),
        );
      };
      const waitSync = async (n: LabNode, before: number, proc: ChildProcess, limitS: number) => {
        for (const deadline = Date.now() + limitS * 1000; syncs(n).length <= before; await sleep(50)) {
          if (proc.exitCode !== null) throw new Error(`kube-router on ${n.name} exited; see ${krLog(n)}`);
          if (Date.now() > deadline) return false;
        }
        return true;
      };
      // with no policies first: its change latency and throughput do not wait for the 10k
      await unloadObjects();
      startKr(n0);
      if (!(await waitSync(n1, syncs(n1).length, startKr(n1), 120)))
        throw new Error(`kube-router on ${n1.name} did not sync within 120 s; see ${krLog(n1)}`);
      say('kube-router: (b) 100 changes', 'running');
      const b2 = await changes();
      peer.changeMs = b2.ms;
      peer.notEnforced = b2.missed;
      peer.gbitNone = iperf(server, client);
      await loadObjects();
      // (a): kube-router on node 1 restarted with the 10k present, as ours was
      const old = krProcs.pop()!;
      // SIGKILL: on SIGTERM it waits for a full sync in progress, which can take minutes
      spawnSync('pkill', ['-P', String(old.pid)]);
      old.kill('SIGKILL');
      await new Promise((r) => (old.exitCode !== null ? r(null) : old.once('exit', r)));
      const before = syncs(n1).length;
      const k0 = performance.now();
      const done = await waitSync(n1, before, startKr(n1), PEER_LIMIT_S);
      peer.startToProgrammedMs = done ? performance.now() - k0 : NaN;
      peer.syncMs = done ? syncs(n1)[before]! : NaN;
      if (!done)
        say(
          `(a) peer: first sync of ${load.policies.length} policies`,
          `not finished within ${PEER_LIMIT_S} s (ipset restore still running); throughput below is measured meanwhile`,
        );
      peer.gbit10k = iperf(server, client);
      printOne('peer', peer as ImplFigures, load.policies.length, say);
    } catch (err: unknown) {
      say('peer (kube-router) run', `FAILED: ${err instanceof Error ? err.message : String(err)}`);
      say('figures of the peer measured before that', JSON.stringify(peer));
      return;
    }

    // ---- figures ---------------------------------------------------------------------------
    const row = (label: string, o: number, p: number, unit: string, digits = 0): void =>
      say(
        label,
        `ours ${o.toFixed(digits)} ${unit}, peer ${p.toFixed(digits)} ${unit}, ours/peer ${(o / p).toFixed(2)}`,
      );
    process.stdout.write('\nours/peer:\n');
    row('(b) change -> enforced by probes, p50', pct(ours.changeMs!, 0.5), pct(peer.changeMs!, 0.5), 'ms');
    row('(b) change -> enforced by probes, p99', pct(ours.changeMs!, 0.99), pct(peer.changeMs!, 0.99), 'ms');
    row('(c) iperf3 across nodes, no policy', ours.gbitNone!, peer.gbitNone!, 'Gbit/s', 2);
    row(
      `(c) iperf3 across nodes, ${load.policies.length} policies`,
      ours.gbit10k!,
      peer.gbit10k!,
      'Gbit/s',
      2,
    );
    say(
      '(c) with 10k / none',
      `ours ${(ours.gbit10k! / ours.gbitNone!).toFixed(3)}x, peer ${(peer.gbit10k! / peer.gbitNone!).toFixed(3)}x`,
    );
    row(
      '(a) lab: enforcer start -> 10k programmed',
      ours.startToProgrammedMs!,
      peer.startToProgrammedMs!,
      'ms',
    );
    row('(a) lab: its sync duration (as it reports it)', ours.syncMs!, peer.syncMs!, 'ms');
  } finally {
    for (const p of krProcs) {
      spawnSync('pkill', ['-P', String(p.pid)]); // its ipset/iptables restore
      p.kill('SIGTERM');
    }
    await kube.close();
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
  }
}
