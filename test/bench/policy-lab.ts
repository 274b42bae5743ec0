// `make bench-policy` parts (a)-(c) side by side, in one two-node lab (vxlan) against one API
// server: (a) an enforcer started with 1k, then 10k policies (+5k pod objects) already there, time
// until it has programmed them; (b) time from a policy create, delete or label change to
// enforcement seen by probes (a connect attempt every 5 ms from a pod on node 0 to a pod on node 1),
// p50/p99 over 100 changes; (c) iperf3 TCP throughput between those pods with no policy, 1k and 10k.
// Each is measured for our agent, then for the peer (kube-router's network policy controller, run
// as each node's policy agent while our agents run with TRELLIS_POLICY=off), printed as soon as
// measured, then as ratios ours/peer. The peer's syncs are bounded by PEER_LIMIT_S each: one that
// does not finish is printed as that bound. Figures, not a test.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
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
/** The smaller policy count of (a) and (c); the larger is all of the load's policies. */
const FEW = 1000;
/** How long one sync of the peer may take before it is given up (printed as a bound). @default 240 s */
const PEER_LIMIT_S = Number(process.env.TRELLIS_BENCH_PEER_LIMIT_S ?? 240);

export interface LabLoad {
  namespaces: { metadata: { name: string; labels: Record<string, string> } }[];
  pods: PodObject[];
  policies: NetworkPolicy[];
}

/** start -> programmed: a measured duration, or the bound it did not finish within. */
/** `progress`: how far an unfinished one got (the peer: ipsets in the node's netns by then). */
type Timed = { ms: number; syncMs: number } | { boundMs: number; progress?: string };

interface ImplFigures {
  changeMs: number[];
  notEnforced: number;
  gbitNone: number;
  gbitFew: number;
  /** Not measured when the implementation never had the many policies programmed. */
  gbitMany?: number;
  startFew: Timed;
  startMany: Timed;
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

const timedText = (t: Timed): string =>
  'ms' in t
    ? `${t.ms.toFixed(0)} ms (its sync ${t.syncMs.toFixed(0)} ms)`
    : `not finished within ${(t.boundMs / 1000).toFixed(0)} s (bound)${t.progress ? `; ${t.progress}` : ''}`;

/** One implementation's figures, printed as soon as they are all measured. */
function printOne(name: string, f: ImplFigures, many: number, say: Say): void {
  say(
    `(b) ${name}: changes enforced`,
    `${f.changeMs.length}/${CHANGES} (not within ${CHANGE_LIMIT_MS / 1000} s: ${f.notEnforced})`,
  );
  say(
    `(b) ${name}: change -> enforced, p50 / p99`,
    `${pct(f.changeMs, 0.5).toFixed(0)} / ${pct(f.changeMs, 0.99).toFixed(0)} ms`,
  );
  say(
    `(c) ${name}: iperf3 across nodes, none / ${FEW} / ${many}`,
    `${f.gbitNone.toFixed(2)} / ${f.gbitFew.toFixed(2)} / ${f.gbitMany?.toFixed(2) ?? 'not measured'} Gbit/s`,
  );
  say(`(a) ${name}: lab, enforcer start -> ${FEW} programmed`, timedText(f.startFew));
  say(`(a) ${name}: lab, enforcer start -> ${many} programmed`, timedText(f.startMany));
}

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

/** A Go time.Duration as printed ("1m2.5s", "183.2ms", "950µs") in ms. */
function goDurationMs(text: string): number {
  const unit: Record<string, number> = {
    h: 3_600_000,
    m: 60_000,
    s: 1000,
    ms: 1,
    µs: 1e-3,
    us: 1e-3,
    ns: 1e-6,
  };
  let ms = 0;
  for (const m of text.matchAll(/([\d.]+)(h|ms|m|s|µs|us|ns)/g)) ms += Number(m[1]) * unit[m[2]!]!;
  return ms;
}

/**
 * kube-router's full policy syncs in its log text, in order: each as its duration and whether it
 * completed (its "sync iptables took" line is logged by a defer, also when the sync aborted).
 */
function kubeRouterSyncs(log: string): { ms: number; ok: boolean }[] {
  return log
    .split(/Starting sync of iptables with version/)
    .slice(1)
    .flatMap((seg) => {
      const took = /sync iptables took (\S+)/.exec(seg);
      if (!took) return [];
      const body = seg.slice(0, took.index);
      return [{ ms: goDurationMs(took[1]!), ok: !/Aborting sync|Failed to/.test(body) }];
    });
}

export async function labBench(load: LabLoad, say: Say): Promise<void> {
  const kr = kubeRouterBinary();
  const many = load.policies.length;
  await down({ stateDir: STATE_DIR, prefix: PREFIX });
  const state = await up({ nodes: 2, backend: 'vxlan', stateDir: STATE_DIR, prefix: PREFIX, subnet: SUBNET });
  const kube = await KubeClient.fromKubeconfig(state.kubeconfig);
  const [n0, n1] = [state.nodes[0]!, state.nodes[1]!];
  const krProcs = new Map<string, ChildProcess>();
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

    // The server stays reachable from the client under every load (a policy selecting it allows it).
    const allowClient = policy('allow-client', {
      podSelector: { matchLabels: { bench: 'server' } },
      ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { bench: 'client' } } }] }],
    });
    const createPolicies = (ps: NetworkPolicy[]) =>
      pool(ps, 16, (np) => kube.create(Builtin.NetworkPolicy, np as KubeObject));
    /** The pod objects, the allow-client policy and the first FEW policies. */
    async function loadFew(): Promise<void> {
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
      await createPolicies(load.policies.slice(0, FEW));
      say(
        `objects: ${load.pods.length} pods + ${FEW + 1} policies created`,
        `${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
    }
    async function loadRest(): Promise<void> {
      const t0 = performance.now();
      await createPolicies(load.policies.slice(FEW));
      say(
        `objects: ${many - FEW} more policies created`,
        `${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
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
    /** (a) for ours: node 1's agent restarted with `policies` present, until it has programmed them. */
    async function oursRestart(policies: number): Promise<Timed> {
      killAgent(state, n1);
      const s0 = Date.now();
      await startAgent(kube, state, n1);
      const [end, took] = await oursProgrammed(n1, new Date(s0).toISOString(), policies);
      return { ms: end - s0, syncMs: took };
    }

    // ---- ours ------------------------------------------------------------------------------
    say('trellis: (b) 100 changes', 'running');
    const b1 = await changes();
    const gbitNone = iperf(server, client);
    await loadFew();
    await oursProgrammed(n1, '', FEW + 1);
    await oursProgrammed(n0, '', FEW + 1);
    const gbitFew = iperf(server, client);
    const startFew = await oursRestart(FEW + 1);
    say(`(a) ours: lab, enforcer start -> ${FEW} programmed`, timedText(startFew));
    await loadRest();
    await oursProgrammed(n1, '', many + 1);
    await oursProgrammed(n0, '', many + 1);
    const gbitMany = iperf(server, client);
    const startMany = await oursRestart(many + 1);
    const ours: ImplFigures = {
      changeMs: b1.ms,
      notEnforced: b1.missed,
      gbitNone,
      gbitFew,
      gbitMany,
      startFew,
      startMany,
    };
    printOne('ours', ours, many, say);

    // ---- the peer: kube-router's netpol controller in place of ours ------------------------
    const peer: Partial<ImplFigures> = {};
    try {
      for (const n of state.nodes) {
        killAgent(state, n);
        await startAgent(kube, state, n, { TRELLIS_POLICY: 'off' });
        spawnSync('ip', ['netns', 'exec', n.netns, 'nft', 'delete', 'table', 'inet', 'trellis-policy']);
      }
      const krLog = (n: LabNode) => join(state.stateDir, 'nodes', n.name, 'kube-router.log');
      const logSize = (n: LabNode): number => {
        try {
          return statSync(krLog(n)).size;
        } catch {
          return 0;
        }
      };
      const startKr = (n: LabNode): { proc: ChildProcess; logFrom: number } => {
        const logFrom = logSize(n);
        // argv, no shell: the log is appended through a file descriptor handed to the child
        const log = openSync(krLog(n), 'a');
        const proc = spawn(
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
        krProcs.set(n.name, proc);
        return { proc, logFrom };
      };
      /** SIGKILL (on SIGTERM it first finishes a sync in progress, which can take minutes). */
      const stopKr = async (n: LabNode): Promise<void> => {
        const p = krProcs.get(n.name);
        if (!p) return;
        krProcs.delete(n.name);
        spawnSync('pkill', ['-KILL', '-P', String(p.pid)]); // its ipset/iptables restore
        if (p.exitCode === null && p.signalCode === null) {
          const exited = new Promise((r) => p.once('exit', r));
          p.kill('SIGKILL');
          await exited;
        }
      };
      const syncsSince = (n: LabNode, from: number) => {
        let text = '';
        try {
          text = readFileSync(krLog(n)).subarray(from).toString('utf8');
        } catch {
          return [];
        }
        return kubeRouterSyncs(text);
      };
      /** Starts the peer on a node; answers once its first full sync has completed, or the bound. */
      const startAndSync = async (n: LabNode): Promise<Timed> => {
        const k0 = performance.now();
        const { proc, logFrom } = startKr(n);
        for (const deadline = Date.now() + PEER_LIMIT_S * 1000; ; await sleep(50)) {
          const done = syncsSince(n, logFrom).find((s) => s.ok);
          if (done) return { ms: performance.now() - k0, syncMs: done.ms };
          if (proc.exitCode !== null) throw new Error(`kube-router on ${n.name} exited; see ${krLog(n)}`);
          if (Date.now() > deadline) {
            const sets = spawnSync('ip', ['netns', 'exec', n.netns, 'ipset', 'list', '-n'], {
              encoding: 'utf8',
              timeout: 30_000,
            });
            const count = sets.stdout.split('\n').filter(Boolean).length;
            return { boundMs: PEER_LIMIT_S * 1000, progress: `${count} ipsets in its netns by then` };
          }
        }
      };
      const must = (n: LabNode, t: Timed, what: string): void => {
        if (!('ms' in t))
          throw new Error(
            `kube-router on ${n.name} did not sync ${what} within ${PEER_LIMIT_S} s; see ${krLog(n)}`,
          );
      };

      // with no policies first: its change latency and throughput do not wait for the 10k
      await unloadObjects();
      must(n0, await startAndSync(n0), 'with no policy');
      must(n1, await startAndSync(n1), 'with no policy');
      say('kube-router: (b) 100 changes', 'running');
      const b2 = await changes();
      peer.changeMs = b2.ms;
      peer.notEnforced = b2.missed;
      peer.gbitNone = iperf(server, client);
      say(
        '(b) peer: change -> enforced, p50 / p99',
        `${pct(b2.ms, 0.5).toFixed(0)} / ${pct(b2.ms, 0.99).toFixed(0)} ms (${b2.ms.length}/${CHANGES} enforced)`,
      );
      say('(c) peer: iperf3 across nodes, no policy', `${peer.gbitNone.toFixed(2)} Gbit/s`);

      // (a): stopped while the objects are created (each event would start another full sync),
      // then started on node 1 with them present, as ours was restarted; node 0 after it for (c)
      await stopKr(n0);
      await stopKr(n1);
      await loadFew();
      peer.startFew = await startAndSync(n1);
      say(`(a) peer: lab, enforcer start -> ${FEW} programmed`, timedText(peer.startFew));
      must(n1, peer.startFew, `${FEW} policies`);
      must(n0, await startAndSync(n0), `${FEW} policies`);
      peer.gbitFew = iperf(server, client);
      say(`(c) peer: iperf3 across nodes, ${FEW} policies`, `${peer.gbitFew.toFixed(2)} Gbit/s`);

      await stopKr(n0);
      await stopKr(n1);
      await loadRest();
      peer.startMany = await startAndSync(n1);
      say(`(a) peer: lab, enforcer start -> ${many} programmed`, timedText(peer.startMany));
      if ('ms' in peer.startMany && 'ms' in (await startAndSync(n0))) peer.gbitMany = iperf(server, client);
      else
        say(
          `(c) peer: iperf3 with ${many} policies`,
          `not measured: the peer had not programmed them within ${PEER_LIMIT_S} s`,
        );
      printOne('peer', peer as ImplFigures, many, say);
    } catch (err: unknown) {
      say('peer (kube-router) run', `FAILED: ${err instanceof Error ? err.message : String(err)}`);
      say('figures of the peer measured before that', JSON.stringify(peer));
      return;
    }

    // ---- figures ---------------------------------------------------------------------------
    const row = (label: string, o: number, p: number | undefined, unit: string, digits = 0): void =>
      say(
        label,
        p === undefined
          ? `ours ${o.toFixed(digits)} ${unit}, peer not measured`
          : `ours ${o.toFixed(digits)} ${unit}, peer ${p.toFixed(digits)} ${unit}, ours/peer ${(o / p).toFixed(3)}`,
      );
    const timedRow = (label: string, o: Timed, p: Timed): void => {
      if (!('ms' in o)) return say(label, `ours ${timedText(o)}`);
      if ('ms' in p) return row(label, o.ms, p.ms, 'ms');
      say(
        label,
        `ours ${o.ms.toFixed(0)} ms, peer > ${(p.boundMs / 1000).toFixed(0)} s (bound), ours/peer < ${(o.ms / p.boundMs).toFixed(4)}`,
      );
    };
    const syncRow = (label: string, o: Timed, p: Timed): void =>
      'ms' in o && 'ms' in p ? row(label, o.syncMs, p.syncMs, 'ms') : undefined;
    process.stdout.write('\nours/peer (peer: kube-router v2.1.0 network policy controller):\n');
    timedRow(`(a) lab: enforcer start -> ${FEW} programmed`, ours.startFew, peer.startFew!);
    syncRow(`(a) lab: its sync of ${FEW} (as it reports it)`, ours.startFew, peer.startFew!);
    timedRow(`(a) lab: enforcer start -> ${many} programmed`, ours.startMany, peer.startMany!);
    syncRow(`(a) lab: its sync of ${many} (as it reports it)`, ours.startMany, peer.startMany!);
    row('(b) change -> enforced by probes, p50', pct(ours.changeMs, 0.5), pct(peer.changeMs!, 0.5), 'ms');
    row('(b) change -> enforced by probes, p99', pct(ours.changeMs, 0.99), pct(peer.changeMs!, 0.99), 'ms');
    row('(c) iperf3 across nodes, no policy', ours.gbitNone, peer.gbitNone, 'Gbit/s', 2);
    row(`(c) iperf3 across nodes, ${FEW} policies`, ours.gbitFew, peer.gbitFew, 'Gbit/s', 2);
    row(`(c) iperf3 across nodes, ${many} policies`, ours.gbitMany!, peer.gbitMany, 'Gbit/s', 2);
    say(
      `(c) with ${many} / none`,
      `ours ${(ours.gbitMany! / ours.gbitNone).toFixed(3)}x, peer ${peer.gbitMany === undefined ? 'not measured' : `${(peer.gbitMany / peer.gbitNone!).toFixed(3)}x`}`,
    );
  } finally {
    for (const p of krProcs.values()) {
      spawnSync('pkill', ['-KILL', '-P', String(p.pid)]); // its ipset/iptables restore
      p.kill('SIGKILL');
    }
    await kube.close();
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
  }
}
