// Scale benchmark (figures, not a test): N pods across M lab nodes, from Pod created to network
// ready (the CNI ADD chain returned in the node's simulated kubelet). A real lab (`trellis lab up`:
// API server, operator, one agent per node started from the rendered DaemonSet, one simulated
// kubelet per node); pods are created through the API with spec.nodeName set (no scheduler in the
// lab), as fast as the client can, and each kubelet wires them as they arrive. Prints the total
// time, pods/s, p50/p99 per pod, agent memory per node, and API server requests per pod
// (apiserver_request_total before and after). The lab's per-pod probe servers are off
// (TRELLIS_LAB_PROBES=0): 1,000 Node processes would not fit the machine, and they are not network
// setup. Run as root, holding the e2e lock: make bench-scale.
// usage: node_modules/.bin/node test/bench/scale-bench.ts [--nodes 10] [--pods 1000] [--backend vxlan]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { REPO_ROOT, kubectlPath } from '../../src/controlplane/binaries.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { agentLog, agentPid } from '../../lab/agents.ts';
import { down } from '../../lab/down.ts';
import { up } from '../../lab/up.ts';
import type { BackendMode, LabState } from '../../lab/state.ts';
import { cpuByRole, cpuSpent, machineBusy, ticksToSeconds } from './proc-cpu.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10' },
    pods: { type: 'string', default: '1000' },
    backend: { type: 'string', default: 'vxlan' },
    'keep-lab': { type: 'boolean', default: false },
  },
});
const NODES = Number(values.nodes);
const PODS = Number(values.pods);
const STATE_DIR = join(REPO_ROOT, '.cache', 'bench-scale-lab');
const PREFIX = 'tsb';
const SUBNET = '198.18.213';
const NAMESPACE = 'scale';
/** Client-side concurrency of the Pod creates (a controller creating a ReplicaSet's pods). */
const CREATE_CONCURRENCY = 16;

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** apiserver_request_total summed by verb and resource (the whole cluster's requests). */
function requestCounts(kubeconfig: string): Map<string, number> {
  const text = execFileSync(kubectlPath(), ['--kubeconfig', kubeconfig, 'get', '--raw', '/metrics'], {
    encoding: 'utf8',
    maxBuffer: 256 * 2 ** 20,
  });
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!] as [string, string]),
    );
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

function memory(pid: number | undefined): { rss: number; hwm: number } | undefined {
  if (!pid) return undefined;
  try {
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      rss: Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0),
      hwm: Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0),
    };
  } catch {
    return undefined;
  }
}

/** The kubelets' 'pod network up' lines for our namespace: pod name -> log time (epoch ms). */
function networkUp(state: LabState, since: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const node of state.nodes) {
    const file = join(state.stateDir, 'nodes', node.name, 'kubelet.log');
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.includes('"pod network up"') || !line.includes(`"pod":"${NAMESPACE}/`)) continue;
      const rec = JSON.parse(line) as { pod: string; time: number };
      if (rec.time < since) continue; // the logs append: an earlier run's lines
      out.set(rec.pod.slice(NAMESPACE.length + 1), rec.time);
    }
  }
  return out;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the scale benchmark builds a lab: run it as root');
  process.env.TRELLIS_LAB_PROBES = '0'; // inherited by the kubelets the lab starts
  await down({ stateDir: STATE_DIR, prefix: PREFIX }); // leftovers of a crashed run
  const labStarted = Date.now();
  const state = await up({
    nodes: NODES,
    backend: values.backend as BackendMode,
    stateDir: STATE_DIR,
    prefix: PREFIX,
    subnet: SUBNET,
    force: true,
    say: (l) => console.error(`lab: ${l}`),
    timeoutMs: 300_000,
  });
  const kube = await KubeClient.fromKubeconfig(state.kubeconfig);
  try {
    console.log(
      `scale benchmark: ${PODS} pods on ${NODES} lab nodes (${values.backend}); lab up in ${((Date.now() - labStarted) / 1000).toFixed(1)} s; machine: ${execFileSync('nproc').toString().trim()} cores, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    );
    await kube.apply(Builtin.Namespace, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NAMESPACE },
    });
    const memBefore = state.nodes.map((n) => memory(agentPid(state, n)));
    await sleep(2000); // let the agents' and kubelets' start-up requests settle
    const before = requestCounts(state.kubeconfig);
    const cpuBefore = cpuByRole(state.stateDir);
    const busyBefore = machineBusy();

    const submitted = new Map<string, number>();
    const created = new Map<string, number>();
    const names = Array.from({ length: PODS }, (_, i) => `scale-${i}`);
    const t0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CREATE_CONCURRENCY }, async () => {
        while (next < names.length) {
          const i = next++;
          const name = names[i]!;
          submitted.set(name, Date.now());
          await kube.create(Builtin.Pod, {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name, namespace: NAMESPACE, labels: { app: 'scale' } },
            spec: {
              nodeName: state.nodes[i % NODES]!.name,
              containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }],
            },
          });
          created.set(name, Date.now()); // the Pod object exists: the kubelet's watch can see it
        }
      }),
    );
    const createdAll = Date.now();
    const deadline = Date.now() + 15 * 60_000;
    let ready = networkUp(state, t0);
    while (ready.size < PODS && Date.now() < deadline) {
      await sleep(500);
      ready = networkUp(state, t0);
    }
    const cpuAfter = cpuByRole(state.stateDir);
    const busyAfter = machineBusy();
    const after = requestCounts(state.kubeconfig);
    const memAfter = state.nodes.map((n) => memory(agentPid(state, n)));

    const done = names.filter((n) => ready.has(n));
    const latencies = done.map((n) => ready.get(n)! - created.get(n)!);
    const fromSubmit = done.map((n) => ready.get(n)! - submitted.get(n)!);
    const last = Math.max(...[...ready.values()]);
    const seconds = (last - t0) / 1000;
    console.log(
      `\nPod created -> network ready (CNI ADD chain returned), ${ready.size}/${PODS} pods${ready.size < PODS ? ' (TIMED OUT: the rest never came up)' : ''}`,
    );
    console.log(
      `  all pods created through the API in ${((createdAll - t0) / 1000).toFixed(1)} s (${CREATE_CONCURRENCY} creates at a time; the API server's pod-create throughput on this machine)`,
    );
    console.log(
      `  first create sent -> last pod network-ready: ${seconds.toFixed(1)} s (${(ready.size / seconds).toFixed(1)} pods/s); the last pod was network-ready ${last >= createdAll ? `${((last - createdAll) / 1000).toFixed(1)} s after` : `${((createdAll - last) / 1000).toFixed(1)} s before`} the last create returned`,
    );
    console.log(
      `  per pod, Pod object created -> network ready: p50 ${(pct(latencies, 50) / 1000).toFixed(2)} s, p99 ${(pct(latencies, 99) / 1000).toFixed(2)} s (from the create request sent: p50 ${(pct(fromSubmit, 50) / 1000).toFixed(2)} s, p99 ${(pct(fromSubmit, 99) / 1000).toFixed(2)} s)`,
    );

    // Where a pod's time went: waiting in its kubelet before ADD began (queue + sandbox netns),
    // the kubelet's CNI chain, and inside it the agent's ADD and its IPAM part.
    const chain: number[] = [];
    const beforeAdd: number[] = [];
    const agentAdd: number[] = [];
    const ipam: number[] = [];
    for (const node of state.nodes) {
      const klog = join(state.stateDir, 'nodes', node.name, 'kubelet.log');
      for (const line of readFileSync(klog, 'utf8').split('\n'))
        if (line.includes('"pod network up"') && line.includes(`"pod":"${NAMESPACE}/`)) {
          const rec = JSON.parse(line) as { ms: number; time: number; pod: string };
          if (rec.time < t0) continue; // the logs append: an earlier run's lines
          chain.push(rec.ms);
          const c = created.get(rec.pod.slice(NAMESPACE.length + 1));
          if (c !== undefined) beforeAdd.push(rec.time - rec.ms - c);
        }
      const alog = agentLog(state, node);
      if (existsSync(alog))
        for (const line of readFileSync(alog, 'utf8').split('\n'))
          if (line.includes('"pod attached"') && line.includes(`"pod":"${NAMESPACE}/`)) {
            const rec = JSON.parse(line) as { time: number; ms: { ipam: number; total: number } };
            if (rec.time < t0) continue;
            const ms = rec.ms;
            ipam.push(ms.ipam);
            agentAdd.push(ms.total);
          }
    }
    const p = (v: number[]): string => `p50 ${pct(v, 50).toFixed(0)} ms, p99 ${pct(v, 99).toFixed(0)} ms`;
    console.log(`  per pod, created -> its kubelet starts the CNI ADD chain: ${p(beforeAdd)}`);
    console.log(`  CNI chain per pod in the kubelet (trellis + portmap): ${p(chain)}`);
    console.log(`  ADD inside the agent: ${p(agentAdd)}; of which IPAM ${p(ipam)}`);

    const busy = ticksToSeconds(busyAfter - busyBefore);
    const spent = cpuSpent(cpuBefore, cpuAfter);
    const labCpu = spent.filter(([r]) => !r.endsWith(' itself')).reduce((a, [, s]) => a + s, 0);
    console.log(
      `\nCPU seconds from the first create to the last pod ready (each role with its child processes; machine busy ${busy.toFixed(1)} s of ${(seconds * Number(execFileSync('nproc').toString())).toFixed(1)} s available)`,
    );
    for (const [role, sec] of spent.filter(([r]) => !r.endsWith(' itself')))
      console.log(
        `  ${role.padEnd(16)} ${sec.toFixed(1).padStart(7)} s  ${((sec * 1000) / PODS).toFixed(1)} ms per pod; the processes themselves ${(spent.find(([r]) => r === `${role} itself`)?.[1] ?? 0).toFixed(1)} s, the rest their commands and plugins`,
      );
    console.log(
      `  ${'not this lab'.padEnd(16)} ${Math.max(0, busy - labCpu)
        .toFixed(1)
        .padStart(7)} s  (other work on the machine)`,
    );

    console.log('\nagent memory per node (RSS, MB): before the pods / after, and the high-water mark');
    for (const [i, node] of state.nodes.entries()) {
      const b = memBefore[i];
      const a = memAfter[i];
      console.log(
        `  ${node.name.padEnd(8)} ${((b?.rss ?? 0) / 1024).toFixed(0).padStart(5)} / ${((a?.rss ?? 0) / 1024).toFixed(0).padStart(5)}   (high-water mark ${((a?.hwm ?? 0) / 1024).toFixed(0)})`,
      );
    }
    const maxAgent = Math.max(...memAfter.map((m) => m?.hwm ?? 0)) / 1024;

    const diff = new Map<string, number>();
    for (const [k, v] of after) {
      const d = v - (before.get(k) ?? 0);
      if (d > 0) diff.set(k, d);
    }
    const total = [...diff.values()].reduce((a, b) => a + b, 0);
    console.log(
      `\nAPI server requests during the run (apiserver_request_total): ${total}, ${(total / PODS).toFixed(2)} per pod`,
    );
    for (const [k, v] of [...diff].sort((a, b) => b[1] - a[1]).slice(0, 10))
      console.log(`  ${k.padEnd(40)} ${String(v).padStart(7)}  ${(v / PODS).toFixed(2)} per pod`);

    console.log('\ntargets (issue 13)');
    console.log(
      `  ${PODS} pods on ${NODES} nodes network-ready < 30 s: ${seconds.toFixed(1)} s   ${seconds < 30 && ready.size === PODS ? 'met' : 'MISSED'}`,
    );
    console.log(
      `  agent memory per node < 150 MB: max high-water mark ${maxAgent.toFixed(0)} MB   ${maxAgent < 150 ? 'met' : 'MISSED'}`,
    );
    console.log(
      '\npublic anchor, 1,000 pods on 10 nodes (Spiderpool published table; WHOLE pod start, image and\n' +
        'containers included, on real clusters): Calico 1 min 41 s, Spiderpool 2 min 18 s, Kube-OVN 3 min 32 s,\n' +
        'Whereabouts 8 min 16 s. The figure above is network setup only (Pod created -> CNI ADD returned),\n' +
        'on simulated nodes sharing one 2-core machine with the API server: not the same measurement.',
    );
  } finally {
    await kube.close();
    if (!values['keep-lab']) await down({ stateDir: STATE_DIR, prefix: PREFIX });
  }
}

main().catch(async (err: unknown) => {
  console.error(err);
  if (!values['keep-lab']) await down({ stateDir: STATE_DIR, prefix: PREFIX }).catch(() => undefined);
  process.exit(1);
});
