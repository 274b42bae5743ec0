// IPAM benchmark (not a test): allocations per second and latency with 20 concurrent allocators on
// one real kube-apiserver, for Trellis IPAM and, in the same run on the same API server, for
// Whereabouts built from its Go module and driven as a CNI IPAM plugin (CNI_COMMAND=ADD, a
// conflist-style config of type whereabouts on stdin), 20 ADDs at a time. Prints both and the
// ratio; checks for duplicate addresses in both. Also prints a burst of 20 concurrent ADDs on a
// single node (one allocator), where group commit batches writes to the same block. If Whereabouts cannot be built, says why and
// prints our figures alone.
//
// usage: node_modules/.bin/node test/bench/ipam-bench.ts [--ours N] [--peer N] [--peer-seconds S]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { IPBlockResource } from '../../src/api/group.ts';
import type { IPBlock } from '../../src/api/ipam.ts';
import { startControlPlane } from '../../src/controlplane/controlplane.ts';
import { createNodeIpam } from '../../src/ipam/index.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import type { Resource } from '../../src/kube/resource.ts';
import { installWhereaboutsCrds, whereaboutsBinary } from './whereabouts/peer.ts';

const CONCURRENCY = 20;
const { values } = parseArgs({
  options: {
    ours: { type: 'string', default: '4000' },
    peer: { type: 'string', default: '400' },
    'peer-seconds': { type: 'string', default: '120' },
  },
});
const OURS_TOTAL = Number(values.ours);
const PEER_TOTAL = Number(values.peer);
const PEER_SECONDS = Number(values['peer-seconds']);

interface Figures {
  name: string;
  allocations: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  duplicates: number;
  failures: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function figures(
  name: string,
  latencies: number[],
  seconds: number,
  ips: string[],
  failures: number,
  extraDuplicates = 0,
): Figures {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    name,
    allocations: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    duplicates: ips.length - new Set(ips).size + extraDuplicates,
    failures,
  };
}

/** Runs `total` jobs with `concurrency` workers; answers per-job latency in ms and wall seconds. */
async function drive(
  total: number,
  concurrency: number,
  job: (i: number, worker: number) => Promise<string | undefined>,
  deadline = Infinity,
): Promise<{ latencies: number[]; ips: string[]; seconds: number; failures: number }> {
  const latencies: number[] = [];
  const ips: string[] = [];
  let next = 0;
  let failures = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (next < total && Date.now() < deadline) {
        const i = next++;
        const s = performance.now();
        const ip = await job(i, w).catch((err: unknown) => {
          failures++;
          if (failures <= 3) process.stderr.write(`allocation ${i} failed: ${String(err).slice(0, 300)}\n`);
          return undefined;
        });
        if (ip === undefined) continue;
        latencies.push(performance.now() - s);
        ips.push(ip);
      }
    }),
  );
  return { latencies, ips, seconds: (performance.now() - t0) / 1000, failures };
}

async function benchOurs(kubeconfig: string): Promise<Figures> {
  // One client per allocator, as every node's agent has its own connection.
  const clients = await Promise.all(
    Array.from({ length: CONCURRENCY }, () => KubeClient.fromKubeconfig(kubeconfig)),
  );
  const spec = { pools: [{ name: 'bench', cidr: '10.200.0.0/16', blockSize: 26 }] };
  const ipams = clients.map((kube, i) =>
    createNodeIpam({ kube, node: `bench-node-${i}`, clusterNetwork: 'bench', spec, events: false }),
  );
  // Warm-up: each allocator lists its pool once, as a running agent already has.
  await Promise.all(ipams.map((ipam) => ipam.lookup({ containerID: 'warm-up', interface: 'eth0' })));
  const r = await drive(OURS_TOTAL, CONCURRENCY, async (i, w) => {
    const got = await ipams[w]!.allocate({
      namespace: 'bench',
      pod: `pod-${i}`,
      containerID: `ours-${i}`,
      interface: 'eth0',
    });
    return got[0]!.ip;
  });
  // Books: every address in the IPBlocks once, and as many as we were handed.
  const blocks = (await clients[0]!.listAll<IPBlock>(IPBlockResource)).items.filter(
    (b) => b.spec?.pool === 'bench',
  );
  const booked = blocks.flatMap((b) => Object.keys(b.spec!.allocations));
  if (booked.length !== r.ips.length)
    process.stderr.write(`ours: ${booked.length} addresses booked for ${r.ips.length} handed out\n`);
  await Promise.all(clients.map((c) => c.close()));
  return figures('trellis', r.latencies, r.seconds, r.ips, r.failures, booked.length - new Set(booked).size);
}

/** A burst on one node: 20 ADDs at a time on the same allocator (group commit batches them). */
async function benchOursBurst(kubeconfig: string, total: number): Promise<Figures> {
  const kube = await KubeClient.fromKubeconfig(kubeconfig);
  const spec = { pools: [{ name: 'burst', cidr: '10.201.0.0/16', blockSize: 26 }] };
  const ipam = createNodeIpam({ kube, node: 'burst-node', clusterNetwork: 'bench', spec, events: false });
  await ipam.lookup({ containerID: 'warm-up', interface: 'eth0' });
  const r = await drive(total, CONCURRENCY, async (i) => {
    const got = await ipam.allocate({
      namespace: 'bench',
      pod: `burst-${i}`,
      containerID: `burst-${i}`,
      interface: 'eth0',
    });
    return got[0]!.ip;
  });
  const blocks = (await kube.listAll<IPBlock>(IPBlockResource)).items.filter((b) => b.spec?.pool === 'burst');
  const booked = blocks.flatMap((b) => Object.keys(b.spec!.allocations));
  await kube.close();
  return figures(
    'trellis(1 node)',
    r.latencies,
    r.seconds,
    r.ips,
    r.failures,
    booked.length - new Set(booked).size,
  );
}

function runPlugin(bin: string, env: Record<string, string>, stdin: string): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(bin, [], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', rej);
    p.on('exit', (code) =>
      code === 0 ? res(out) : rej(new Error(`exit ${code}: ${out.trim()} ${err.trim().slice(-300)}`)),
    );
    p.stdin.end(stdin);
  });
}

async function benchWhereabouts(kubeconfig: string, kube: KubeClient, work: string): Promise<Figures> {
  const bin = whereaboutsBinary();
  await installWhereaboutsCrds(kube, work);
  await waitServes(kube, {
    group: 'whereabouts.cni.cncf.io',
    version: 'v1alpha1',
    plural: 'ippools',
    kind: 'IPPool',
    namespaced: true,
  });
  // Whereabouts insists on a flat configuration file besides the network config.
  const flat = join(work, 'whereabouts.conf');
  writeFileSync(
    flat,
    JSON.stringify({ datastore: 'kubernetes', kubernetes: { kubeconfig }, log_level: 'error' }),
  );
  const config = JSON.stringify({
    cniVersion: '0.3.1',
    name: 'bench-wb',
    type: 'macvlan',
    ipam: {
      type: 'whereabouts',
      range: '10.210.0.0/16',
      configuration_path: flat,
      log_file: join(work, 'whereabouts.log'),
      log_level: 'error',
      kubernetes: { kubeconfig },
    },
  });
  const env = (i: number): Record<string, string> => ({
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: `wb-${i}`,
    CNI_NETNS: '/var/run/netns/bench-none',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-${i}`,
  });
  // The cost of starting the plugin at all, so the reader can tell process start from allocation.
  const v0 = performance.now();
  await runPlugin(bin, { ...env(0), CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.3.1"}');
  const versionMs = performance.now() - v0;
  process.stderr.write(`whereabouts: plugin start + VERSION takes ${versionMs.toFixed(1)} ms\n`);
  await runPlugin(bin, env(-1), config); // warm-up: creates the IPPool
  const r = await drive(
    PEER_TOTAL,
    CONCURRENCY,
    async (i) => {
      const out = JSON.parse(await runPlugin(bin, env(i), config)) as { ips: { address: string }[] };
      return out.ips[0]!.address.split('/')[0];
    },
    Date.now() + PEER_SECONDS * 1000,
  );
  return figures('whereabouts', r.latencies, r.seconds, r.ips, r.failures);
}

async function waitServes(kube: KubeClient, r: Resource): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await kube.list<KubeObject>(r, 'kube-system');
      return;
    } catch {
      await new Promise((res) => setTimeout(res, 100));
    }
  }
}

function print(f: Figures): void {
  console.log(
    `${f.name.padEnd(16)} ${String(f.allocations).padStart(5)} allocations in ${f.seconds.toFixed(1).padStart(6)} s  ` +
      `${f.perSecond.toFixed(1).padStart(8)}/s  p50 ${f.p50.toFixed(1).padStart(7)} ms  p99 ${f.p99.toFixed(1).padStart(7)} ms  ` +
      `duplicates ${f.duplicates}  failures ${f.failures}`,
  );
}

const work = mkdtempSync(join(tmpdir(), 'ipam-bench-'));
const cp = await startControlPlane({ dir: join(work, 'cp') });
try {
  const kube = await KubeClient.fromKubeconfig(cp.kubeconfig);
  await installCrds(kube);
  await waitServes(kube, IPBlockResource);
  console.log(`IPAM benchmark: ${CONCURRENCY} concurrent allocators on one kube-apiserver (${cp.server})`);
  const ours = await benchOurs(cp.kubeconfig);
  print(ours);
  print(await benchOursBurst(cp.kubeconfig, Math.min(OURS_TOTAL, 1000)));
  let peer: Figures | undefined;
  try {
    peer = await benchWhereabouts(cp.kubeconfig, kube, work);
    print(peer);
  } catch (err: unknown) {
    console.log(`whereabouts: not measured: ${String(err)}`);
  }
  if (peer) {
    console.log(
      `ratio trellis/whereabouts: throughput ${(ours.perSecond / peer.perSecond).toFixed(1)}x, ` +
        `p99 latency ${(peer.p99 / ours.p99).toFixed(1)}x lower (target: >= 10x throughput, 0 duplicates)`,
    );
  }
  await kube.close();
} finally {
  await cp.stop();
  rmSync(work, { recursive: true, force: true });
}
