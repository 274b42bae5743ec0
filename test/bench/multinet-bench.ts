// Multi-network benchmark (figures, not a test): CNI ADD and DEL of a pod with eth0 and two macvlan
// attachments, 200 pods one at a time and 8 at a time, in a one-node lab (real kube-apiserver,
// our operator and agent, real netns and macvlan on the node's data NIC).
//   ours:  one ADD through the node's conflist; the agent attaches eth0, then delegates the two
//          networks of the pod's NPWG annotation to the reference macvlan with trellis IPAM.
//   peer:  Multus thick v4 is the issue's peer, but the Go module proxy refuses its module
//          (github.com/k8snetworkplumbingwg/multus-cni/v4: "not available"), so, as the issue
//          allows, the peer is the reference chain driven directly, the way a meta-plugin drives
//          it: eth0 through the same conflist, then the reference macvlan with Whereabouts (built
//          from its Go module, test/bench/whereabouts/build.sh) for each of the two networks.
//          That leaves out Multus's own cost (shim, daemon, its API reads), so the ratio is
//          conservative in Multus's favour.
// Prints p50/p99 of ADD and DEL for both, the ratio, and the agent's peak RSS during each burst.
// usage: node_modules/.bin/node test/bench/multinet-bench.ts [--pods 200] [--concurrency 8]
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ClusterNetworkResource } from '../../src/api/group.ts';
import { loadFirstConfList, type NetworkConfigList } from '../../src/cni/runner-config.ts';
import {
  addNetworkList,
  delNetworkList,
  type RunnerOptions,
  type RuntimeConf,
} from '../../src/cni/runner.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { NETWORKS_ANNOTATION } from '../../src/multinet/index.ts';
import { agentLog, agentPid, startAgent } from '../../lab/agents.ts';
import { installWhereaboutsCrds, whereaboutsBinary } from './whereabouts/peer.ts';
import { DATA_NIC } from '../../lab/databridge.ts';
import { down } from '../../lab/down.ts';
import { ensureNamespace } from '../../lab/podcmd.ts';
import { run, tryRun } from '../../lab/sh.ts';
import { REPO, type LabState } from '../../lab/state.ts';
import { up } from '../../lab/up.ts';

const { values } = parseArgs({
  options: {
    pods: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    // For a memory investigation: NAME=VALUE added to the agent's environment (e.g. NODE_OPTIONS
    // with --heapsnapshot-signal=SIGUSR2 or an --import that logs process.memoryUsage()), and
    // SIGUSR2 sent to it before the first burst and after each DEL burst.
    'agent-env': { type: 'string', multiple: true },
    'signal-phases': { type: 'boolean', default: false },
  },
});
const PODS = Number(values.pods);
const CONCURRENCY = Number(values.concurrency);
const PREFIX = 'tbm';
const STATE_DIR = join(REPO, '.cache', 'lab-bench-multinet');
const NS = 'bench';

interface Sample {
  add: number[];
  del: number[];
  baseRssMiB: number;
  peakRssMiB: number;
  /** 3 s after the DEL burst. */
  afterRssMiB: number;
  /** Peak summed RSS of the CNI plugin processes running at one time (the peer has no daemon). */
  pluginsPeakMiB: number;
  /** Machine-wide busy CPU (every process: plugins, agent, API server, etcd) per pod, ADD + DEL. */
  cpuMsPerPod: number;
  /** The agent's own CPU per pod, and that of the plugins it ran and reaped. */
  agentMsPerPod: { self: number; children: number };
  failures: string[];
}

/** CPU ms of a process itself and of the children it has reaped (/proc/PID/stat, 100 ticks/s). */
function procCpuMs(pid: number | undefined): { self: number; children: number } {
  if (!pid) return { self: NaN, children: NaN };
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const t = (i: number) => Number(f[i - 3]) * 10;
    return { self: t(14) + t(15), children: t(16) + t(17) };
  } catch {
    return { self: NaN, children: NaN };
  }
}

/** Busy CPU time of the whole machine so far (ms, all cores). */
function busyMs(): number {
  return cpus().reduce((sum, c) => sum + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

function rssMiB(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CNI plugin executables whose processes count as the chain's transient memory on the node. */
const PLUGIN_COMMS = new Set(['trellis', 'macvlan', 'tuning', 'portmap', 'whereabouts']);

/** Summed RSS of the running CNI plugin processes (both chains run them per call). */
function pluginsRssMiB(): number {
  let kb = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const name = /^Name:\s+(\S+)/m.exec(status)?.[1];
      if (!name || !PLUGIN_COMMS.has(name)) continue;
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kb / 1024;
}

/**
 * Runs jobs 0..n-1 with `concurrency` workers while sampling the agent's RSS every 50 ms and the
 * plugin processes' summed RSS every 250 ms.
 */
async function burst(
  n: number,
  concurrency: number,
  pid: number | undefined,
  job: (i: number) => Promise<void>,
): Promise<{
  ms: number[];
  base: number;
  peak: number;
  cpu: number;
  agent: { self: number; children: number };
  failures: string[];
  pluginsPeak: number;
}> {
  const ms: number[] = [];
  let pluginsPeak = 0;
  const pluginTimer = setInterval(() => (pluginsPeak = Math.max(pluginsPeak, pluginsRssMiB())), 250);
  const failures: string[] = [];
  const cpu0 = busyMs();
  const agent0 = procCpuMs(pid);
  const base = rssMiB(pid);
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t = performance.now();
        try {
          await job(i);
          ms.push(performance.now() - t);
        } catch (err: unknown) {
          failures.push(err instanceof Error ? err.message : String(err));
        }
      }
    }),
  );
  clearInterval(timer);
  clearInterval(pluginTimer);
  const agent1 = procCpuMs(pid);
  return {
    ms,
    base,
    peak,
    cpu: busyMs() - cpu0,
    agent: { self: agent1.self - agent0.self, children: agent1.children - agent0.children },
    failures,
    pluginsPeak,
  };
}

function whereabouts(state: LabState): {
  bin: string;
  config: (name: string, range: string) => NetworkConfigList;
} {
  const bin = whereaboutsBinary();
  const work = join(STATE_DIR, 'whereabouts');
  mkdirSync(work, { recursive: true });
  const flat = join(work, 'whereabouts.conf');
  writeFileSync(
    flat,
    JSON.stringify({
      datastore: 'kubernetes',
      kubernetes: { kubeconfig: state.kubeconfig },
      log_level: 'error',
    }),
  );
  return {
    bin,
    config: (name, range) => ({
      cniVersion: '0.3.1',
      name,
      plugins: [
        {
          type: 'macvlan',
          master: DATA_NIC,
          mode: 'bridge',
          ipam: {
            type: 'whereabouts',
            range,
            configuration_path: flat,
            log_file: join(work, 'whereabouts.log'),
            log_level: 'error',
            kubernetes: { kubeconfig: state.kubeconfig },
          },
        },
      ],
    }),
  };
}

async function main(): Promise<void> {
  await down({ stateDir: STATE_DIR, prefix: PREFIX });
  const say = (l: string) => process.stderr.write(`${l}\n`);
  const state = await up({
    nodes: 1,
    backend: 'vxlan',
    stateDir: STATE_DIR,
    prefix: PREFIX,
    subnet: '198.18.13',
    say,
  });
  const kube = await KubeClient.fromKubeconfig(state.kubeconfig);
  try {
    const node = state.nodes[0]!;
    if (values['agent-env']?.length) {
      const env = Object.fromEntries(
        values['agent-env'].map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      const log = agentLog(state, node);
      const from = readFileSync(log, 'utf8').length;
      await startAgent(kube, state, node, env);
      for (let t = 0; !readFileSync(log, 'utf8').slice(from).includes('"msg":"agent running"'); t++) {
        if (t > 300) throw new Error(`the agent restarted with --agent-env did not start; see ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await kube.mergePatch(ClusterNetworkResource, 'default', {
      spec: {
        attachments: ['m1', 'm2'].map((name, i) => ({
          name,
          namespace: NS,
          type: 'macvlan',
          master: DATA_NIC,
          pool: { cidr: `10.${90 + i}.0.0/16` },
        })),
      },
    });
    await ensureNamespace(kube, NS);
    for (let t = 0; (await kube.list(Builtin.NetworkAttachmentDefinition, NS)).items.length < 2; t++) {
      if (t > 300) throw new Error('the operator rendered no NADs');
      await new Promise((r) => setTimeout(r, 200));
    }
    await installWhereaboutsCrds(kube, STATE_DIR);
    const wb = whereabouts(state);
    const conflist = loadFirstConfList(join(node.root, 'etc', 'cni', 'net.d'))!;
    const binDir = join(node.root, 'opt', 'cni', 'bin');
    const peerBin = join(STATE_DIR, 'peer-bin');
    mkdirSync(peerBin, { recursive: true });
    cpSync(wb.bin, join(peerBin, 'whereabouts'));
    const opts: RunnerOptions = {
      binDirs: [binDir, peerBin],
      wrap: ['nsenter', `--net=/run/netns/${node.netns}`],
    };
    const peerNets = [wb.config('w1', '10.92.0.0/16'), wb.config('w2', '10.93.0.0/16')];

    // Pods exist in the API (bound to a node without a kubelet, so only this bench calls CNI).
    const total = PODS * 2 * 2;
    say(`creating ${total} pods and network namespaces`);
    const podName = (side: string, round: string, i: number) => `${side}-${round}-${i}`;
    for (const side of ['ours', 'peer'])
      for (const round of ['seq', 'par'])
        for (let i = 0; i < PODS; i++) {
          const name = podName(side, round, i);
          await kube.create(Builtin.Pod, {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: {
              name,
              namespace: NS,
              annotations: side === 'ours' ? { [NETWORKS_ANNOTATION]: 'm1, m2' } : {},
            },
            spec: { nodeName: 'bench-none', containers: [{ name: 'c', image: 'none' }] },
          });
          run(['ip', 'netns', 'add', `${PREFIX}-${name}`]);
        }
    const rt = (name: string, ifName = 'eth0'): RuntimeConf => ({
      // 64 hex like a runtime's ids (padding names gave ours-seq-1 and ours-seq-10 one id).
      containerId: createHash('sha256').update(name).digest('hex'),
      netns: `/run/netns/${PREFIX}-${name}`,
      ifName,
      args: [
        ['IgnoreUnknown', '1'],
        ['K8S_POD_NAMESPACE', NS],
        ['K8S_POD_NAME', name],
      ],
      capabilityArgs: {},
    });
    const pid = agentPid(state, node);
    const signal = async (what: string) => {
      if (!values['signal-phases'] || !pid) return;
      say(`SIGUSR2 to the agent: ${what}`);
      process.kill(pid, 'SIGUSR2');
      await new Promise((r) => setTimeout(r, 3000));
    };
    await signal('before the first burst');
    const results: Record<string, Sample> = {};
    for (const side of ['ours', 'peer'] as const) {
      for (const [round, conc] of [
        ['seq', 1],
        ['par', CONCURRENCY],
      ] as const) {
        const addJob = async (i: number) => {
          const name = podName(side, round, i);
          await addNetworkList(opts, conflist, rt(name));
          if (side === 'peer') {
            await addNetworkList(opts, peerNets[0]!, rt(name, 'net1'));
            await addNetworkList(opts, peerNets[1]!, rt(name, 'net2'));
          }
        };
        const delJob = async (i: number) => {
          const name = podName(side, round, i);
          if (side === 'peer') {
            await delNetworkList(opts, peerNets[1]!, rt(name, 'net2'));
            await delNetworkList(opts, peerNets[0]!, rt(name, 'net1'));
          }
          await delNetworkList(opts, conflist, rt(name));
        };
        say(`${side}: ${PODS} ADDs ${conc} at a time`);
        const add = await burst(PODS, conc, pid, addJob);
        say(`${side}: ${PODS} DELs ${conc} at a time`);
        const del = await burst(PODS, conc, pid, delJob);
        // Settled: what the agent still holds once the burst is over.
        await new Promise((r) => setTimeout(r, 3000));
        const afterRssMiB = rssMiB(pid);
        await signal(`after ${side} ${round}`);
        results[`${side} ${round === 'seq' ? 'sequential' : `${conc} at a time`}`] = {
          add: add.ms,
          del: del.ms,
          baseRssMiB: add.base,
          peakRssMiB: Math.max(add.peak, del.peak),
          afterRssMiB,
          pluginsPeakMiB: Math.max(add.pluginsPeak, del.pluginsPeak),
          cpuMsPerPod: (add.cpu + del.cpu) / PODS,
          agentMsPerPod: {
            self: (add.agent.self + del.agent.self) / PODS,
            children: (add.agent.children + del.agent.children) / PODS,
          },
          failures: [...add.failures, ...del.failures],
        };
      }
    }
    console.log('\nmulti-network CNI benchmark: pod with eth0 + 2 macvlan attachments (ms)');
    console.log(
      'case                      ADD p50   ADD p99   DEL p50   DEL p99  CPU ms/pod  agent RSS before -> peak -> after  plugins peak  failures',
    );
    for (const [k, s] of Object.entries(results)) {
      console.log(
        `${k.padEnd(24)} ${pct(s.add, 50).toFixed(1).padStart(8)} ${pct(s.add, 99).toFixed(1).padStart(9)} ` +
          `${pct(s.del, 50).toFixed(1).padStart(9)} ${pct(s.del, 99).toFixed(1).padStart(9)} ` +
          `${s.cpuMsPerPod.toFixed(0).padStart(11)} ` +
          `${s.baseRssMiB.toFixed(0).padStart(11)} -> ${s.peakRssMiB.toFixed(0).padStart(4)} -> ` +
          `${s.afterRssMiB.toFixed(0).padStart(4)} MiB ${s.pluginsPeakMiB.toFixed(0).padStart(9)} MiB ` +
          `${String(s.failures.length).padStart(9)}`,
      );
      console.log(
        `  CPU ms/pod of the agent: ${s.agentMsPerPod.self.toFixed(0)} itself, ` +
          `${s.agentMsPerPod.children.toFixed(0)} in the plugins it ran`,
      );
      if (s.failures.length) console.log(`  first failure: ${s.failures[0]!.slice(0, 300)}`);
    }
    for (const round of ['sequential', `${CONCURRENCY} at a time`]) {
      const o = results[`ours ${round}`]!;
      const p = results[`peer ${round}`]!;
      console.log(
        `ratio peer/ours ${round}: ADD p50 ${(pct(p.add, 50) / pct(o.add, 50)).toFixed(2)}x, ` +
          `ADD p99 ${(pct(p.add, 99) / pct(o.add, 99)).toFixed(2)}x, DEL p50 ${(pct(p.del, 50) / pct(o.del, 50)).toFixed(2)}x`,
      );
    }
    console.log(
      'peer: reference macvlan + Whereabouts driven directly (the Multus v4 module was refused: 403 "not available");',
    );
    console.log(
      '      the peer has no node daemon of its own (Whereabouts runs per call); the RSS is our agent, which serves eth0 on both sides;',
    );
    console.log(
      '      plugins peak: the most RSS the CNI plugin processes (shim, macvlan, tuning, portmap, whereabouts) held at one time',
    );
    for (const n of readdirSync('/run/netns').filter((x) => x.startsWith(`${PREFIX}-`)))
      tryRun(['ip', 'netns', 'del', n]);
  } finally {
    await kube.close();
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `multinet-bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
