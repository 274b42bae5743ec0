// Operator/agent API-load benchmark (figures, not a test). An idle cluster of 100 simulated nodes on
// one real kube-apiserver: 100 Node objects, one IPBlock each, a ClusterNetwork, the operator as a
// process, one real agent in a network namespace of its own (node-000), and a load script writing
// NodeNetworkStatus heartbeats for the other 99 nodes, as their agents would. The API server's
// audit log (one user per client) counts the requests each makes; the window starts after all
// are up. Prints requests per minute by client and verb, list requests after start-up, status
// writes per heartbeat, and the operator's memory. `--root DIR` runs the operator and agent from
// another checkout (e.g. the code before a change) with this script, for before/after figures.
//
// Needs root (a netns and a veth pair); run it under the e2e lock: `make bench-operator`.
// usage: node test/bench/operator-bench.ts [--seconds 60] [--heartbeat 10] [--root DIR]
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ClusterNetworkResource, IPBlockResource, NodeNetworkStatusResource } from '../../src/api/group.ts';
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import type { NodeNetworkStatus } from '../../src/api/nodestatus.ts';
import { readAudit } from '../../src/controlplane/audit.ts';
import { startControlPlane } from '../../src/controlplane/controlplane.ts';
import { blockName } from '../../src/ipam/block.ts';
import { parseCidr } from '../../src/ipam/cidr.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import { Builtin } from '../../src/kube/resource.ts';

const HERE = resolve(fileURLToPath(new URL('.', import.meta.url)));
const REPO = resolve(HERE, '../..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    heartbeat: { type: 'string', default: '10' },
    nodes: { type: 'string', default: '100' },
    root: { type: 'string', default: REPO },
  },
});
const WINDOW_S = Number(values.seconds);
const HEARTBEAT_S = Number(values.heartbeat);
const NODES = Number(values.nodes);
const ROOT = resolve(values.root);
const NODE_BIN = join(REPO, 'node_modules/.bin/node');
const NS = 'trbench';
const HOST_IP = '10.254.77.1';
const AGENT_IP = '10.254.77.2';

const sh = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });
const trySh = (cmd: string, ...args: string[]): void => {
  try {
    sh(cmd, ...args);
  } catch {
    /* already gone */
  }
};

function nodeName(i: number): string {
  return `node-${String(i).padStart(3, '0')}`;
}

function nodeIp(i: number): string {
  return i === 0 ? AGENT_IP : `10.254.${80 + Math.floor(i / 250)}.${(i % 250) + 1}`;
}

function blockCidr(i: number): string {
  return `10.244.${Math.floor(i / 4)}.${(i % 4) * 64}/26`;
}

function countAudit(file: string, from: number, to: number): Map<string, Map<string, number>> {
  const seen = new Set<string>();
  const out = new Map<string, Map<string, number>>();
  for (const ev of readAudit(file)) {
    if (seen.has(ev.auditID)) continue;
    const t = Date.parse(ev.requestReceivedTimestamp);
    if (t < from || t >= to) continue;
    seen.add(ev.auditID);
    const res = `${ev.objectRef?.resource ?? '-'}${ev.objectRef?.subresource ? `/${ev.objectRef.subresource}` : ''}`;
    const key = `${ev.verb} ${res}`;
    const byUser = out.get(ev.user.username) ?? new Map<string, number>();
    byUser.set(key, (byUser.get(key) ?? 0) + 1);
    out.set(ev.user.username, byUser);
  }
  return out;
}

function rssMiB(pid: number | undefined): number {
  if (!pid) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-operator-'));
  const children: ChildProcess[] = [];
  let plane: Awaited<ReturnType<typeof startControlPlane>> | undefined;
  trySh('ip', 'netns', 'del', NS);
  trySh('ip', 'link', 'del', 'trb-h');
  try {
    // The agent's node: a netns reaching the API server over a veth pair (no other traffic).
    sh('ip', 'netns', 'add', NS);
    sh('ip', 'link', 'add', 'trb-h', 'type', 'veth', 'peer', 'name', 'trb-a');
    sh('ip', 'link', 'set', 'trb-a', 'netns', NS);
    sh('ip', 'addr', 'add', `${HOST_IP}/30`, 'dev', 'trb-h');
    sh('ip', 'link', 'set', 'trb-h', 'up');
    sh('ip', '-n', NS, 'addr', 'add', `${AGENT_IP}/30`, 'dev', 'trb-a');
    sh('ip', '-n', NS, 'link', 'set', 'trb-a', 'up');
    sh('ip', '-n', NS, 'link', 'set', 'lo', 'up');

    plane = await startControlPlane({ dir: join(dir, 'cp'), bindAddress: HOST_IP, audit: true });
    const auditLog = plane.auditLog!;
    const admin = await KubeClient.fromKubeconfig(plane.kubeconfig);
    await installCrds(admin, join(REPO, 'crds'));
    const kcOperator = plane.kubeconfigFor('bench-operator', 'bench-operator', ['system:masters']);
    const kcAgent = plane.kubeconfigFor('bench-agent', 'bench-agent', ['system:masters']);
    const kcLoad = plane.kubeconfigFor('bench-load', 'bench-load', ['system:masters']);
    const load = await KubeClient.fromKubeconfig(kcLoad);

    for (let i = 0; i < NODES; i++) {
      const name = nodeName(i);
      await admin.create(Builtin.Node, {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name, labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': name } },
      });
      await admin.mergePatch(
        Builtin.Node,
        name,
        { status: { addresses: [{ type: 'InternalIP', address: nodeIp(i) }] } },
        undefined,
        'status',
      );
      if (i === 0) continue; // the real agent claims its own blocks when it needs them
      const cidr = blockCidr(i);
      await admin.create(IPBlockResource, {
        apiVersion: 'network.trellis.dev/v1alpha1',
        kind: 'IPBlock',
        metadata: {
          name: blockName('v4', parseCidr(cidr)),
          labels: { 'network.trellis.dev/pool': 'v4', 'network.trellis.dev/node': name },
        },
        spec: { pool: 'v4', cidr, node: name, allocations: {}, used: 0 },
      });
    }
    const cn: ClusterNetwork = {
      apiVersion: 'network.trellis.dev/v1alpha1',
      kind: 'ClusterNetwork',
      metadata: { name: 'default' },
      spec: { pools: [{ name: 'v4', cidr: '10.244.0.0/16', blockSize: 26 }], backend: { mode: 'vxlan' } },
    };
    await admin.create(ClusterNetworkResource, cn);

    const operator = spawn(
      NODE_BIN,
      [
        join(ROOT, 'operator/main.ts'),
        `--kubeconfig=${kcOperator}`,
        '--leader-elect=false',
        '--metrics-port=-1',
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'ignore'],
        env: { ...process.env, TRELLIS_LOG_LEVEL: 'warn' },
      },
    );
    children.push(operator);

    // Heartbeats of the 99 simulated agents, spread over the interval as real agents' would be.
    let heartbeats = 0;
    let beating = true;
    const beat = async (i: number): Promise<void> => {
      const name = nodeName(i);
      const obj = {
        apiVersion: 'network.trellis.dev/v1alpha1',
        kind: 'NodeNetworkStatus',
        metadata: { name },
      };
      await load.apply(NodeNetworkStatusResource, { ...obj, spec: {} }, { fieldManager: 'trellis-agent' });
      while (beating) {
        await load.apply(
          NodeNetworkStatusResource,
          {
            ...obj,
            status: {
              clusterNetwork: 'default',
              ready: true,
              nodeIP: nodeIp(i),
              backend: 'vxlan',
              vtepMAC: `02:00:0a:fe:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
              blocks: [blockCidr(i)],
              peers: NODES - 1,
              lastHeartbeatTime: new Date().toISOString(),
            },
          },
          { fieldManager: 'trellis-agent' },
          'status',
        );
        heartbeats += 1;
        await sleep(HEARTBEAT_S * 1000);
      }
    };
    const beats = Array.from({ length: NODES - 1 }, (_, k) =>
      sleep((k * HEARTBEAT_S * 1000) / (NODES - 1)).then(() => beat(k + 1)),
    );

    const agentDir = join(dir, 'agent');
    for (const d of ['net.d', 'bin', 'state', 'run']) mkdirSync(join(agentDir, d), { recursive: true });
    writeFileSync(
      join(agentDir, 'conflist'),
      JSON.stringify({ cniVersion: '1.1.0', name: 'trellis', plugins: [{ type: 'trellis' }] }),
    );
    const agent = spawn('ip', ['netns', 'exec', NS, NODE_BIN, join(ROOT, 'agent/main.ts')], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'ignore'],
      env: {
        ...process.env,
        KUBECONFIG: kcAgent,
        NODE_NAME: nodeName(0),
        TRELLIS_CLUSTER_NETWORK: 'default',
        TRELLIS_LOG_LEVEL: 'warn',
        TRELLIS_CNI_CONF_DIR: join(agentDir, 'net.d'),
        TRELLIS_CNI_BIN_DIR: join(agentDir, 'bin'),
        TRELLIS_SOCKET: join(agentDir, 'run', 'cni.sock'),
        TRELLIS_STATE_DIR: join(agentDir, 'state'),
        TRELLIS_CNI_CONFIG: join(agentDir, 'conflist'),
        TRELLIS_CNI_BINARY: join(REPO, 'dist', 'trellis-cni'),
        TRELLIS_DEVICE_PREFIX: 'trb',
      },
    });
    children.push(agent);

    // Up: the operator reports the ClusterNetwork, and the real agent reports its node ready.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const st = await admin.getOrUndefined<NodeNetworkStatus>(NodeNetworkStatusResource, nodeName(0));
      const c = await admin.get<ClusterNetwork>(ClusterNetworkResource, 'default');
      if (st?.status?.ready && c.status?.nodesReady) break;
      if (Date.now() > deadline) throw new Error('operator and agent did not come up within 120 s');
      if (operator.exitCode !== null || agent.exitCode !== null)
        throw new Error('operator or agent exited early');
      await sleep(1000);
    }
    await sleep(10_000); // settle: start-up lists and the first reconciles are not the steady state
    const from = Date.now();
    const hbBefore = heartbeats;
    await sleep(WINDOW_S * 1000);
    const to = Date.now();
    const hb = heartbeats - hbBefore;
    const opRss = rssMiB(operator.pid);
    beating = false;
    await sleep(2000); // let the audit log flush the window's last events
    const counts = countAudit(auditLog, from, to);
    const perMin = (n: number) => (n * 60_000) / (to - from);
    const total = (m: Map<string, number> | undefined) =>
      [...(m ?? new Map()).values()].reduce((a, b) => a + b, 0);
    const lists = (m: Map<string, number> | undefined) =>
      [...(m ?? new Map<string, number>()).entries()]
        .filter(([k]) => k.startsWith('list '))
        .reduce((a, [, n]) => a + n, 0);
    const op = counts.get('bench-operator');
    const ag = counts.get('bench-agent');
    const statusWrites = [...(op ?? new Map<string, number>()).entries()]
      .filter(([k]) => k.endsWith('clusternetworks/status') && !k.startsWith('get '))
      .reduce((a, [, n]) => a + n, 0);
    const fig = {
      root: ROOT,
      nodes: NODES,
      windowSeconds: Math.round((to - from) / 1000),
      heartbeatsPerMinute: Math.round(perMin(hb)),
      operator: {
        requestsPerMinute: Math.round(perMin(total(op))),
        listsPerMinute: Math.round(perMin(lists(op))),
        statusWritesPerMinute: Math.round(perMin(statusWrites)),
        requestsPerHeartbeat: hb ? +(total(op) / hb).toFixed(3) : null,
        rssMiB: +opRss.toFixed(1),
        byVerb: Object.fromEntries([...(op ?? new Map<string, number>())].sort((a, b) => b[1] - a[1])),
      },
      agent: {
        requestsPerMinute: Math.round(perMin(total(ag))),
        listsPerMinute: Math.round(perMin(lists(ag))),
        byVerb: Object.fromEntries([...(ag ?? new Map<string, number>())].sort((a, b) => b[1] - a[1])),
      },
    };
    console.log(
      [
        `operator bench: ${NODES} nodes, ${fig.heartbeatsPerMinute} heartbeats/min, window ${fig.windowSeconds} s, code from ${ROOT}`,
        `  operator: ${fig.operator.requestsPerMinute} requests/min (${fig.operator.listsPerMinute} lists/min, ${fig.operator.statusWritesPerMinute} status writes/min), ${fig.operator.requestsPerHeartbeat} requests per heartbeat, RSS ${fig.operator.rssMiB} MiB`,
        `  agent:    ${fig.agent.requestsPerMinute} requests/min (${fig.agent.listsPerMinute} lists/min)`,
      ].join('\n'),
    );
    console.log(JSON.stringify(fig));
    await Promise.allSettled(beats);
    await load.close();
    await admin.close();
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await sleep(500);
    trySh('ip', 'netns', 'del', NS);
    trySh('ip', 'link', 'del', 'trb-h');
    await plane?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
