// `make bench-containerd2`: figures, not a test. A real-node lab whose nodes run containerd 2.x
// built from its Go module (hack/build-containerd2.sh; a cold build takes minutes, so it stays off
// the `make test` path), Trellis installed by helm as in `make lab`. It shows what the runtime
// sends our plugin, counted by the agents themselves (trellis_agent_cni_requests_total):
//   1. pods of a Deployment on every node start (ADD through containerd 2's CRI);
//   2. with our conflist at cniVersion 1.0.0 the runtime sends no STATUS (libcni skips it below 1.1.0);
//   3. with `spec.agent.cniVersion: 1.1.0` (every plugin of the chain speaks 1.1 on these nodes) the
//      agents roll, install a 1.1.0 conflist, the runtime sends STATUS on every kubelet status poll
//      and pods still start;
//   4. the runtime's view: the agent's socket removed on one node, STATUS fails and kubelet marks
//      the node NotReady; the agent pod deleted, the DaemonSet brings it back and the node is Ready;
//   5. GC: how many the runtime sent (containerd 2.4 has no caller of libcni's GC; see docs/real-nodes.md).
// Holds the e2e lock (the Makefile takes it): it creates network namespaces.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterNetworkResource } from '../../src/api/group.ts';
import { AGENT_METRICS_PORT } from '../../src/render/agent.ts';
import { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { down } from '../../lab/down.ts';
import { realDemo } from '../../lab/nodes/demo.ts';
import { inNode } from '../../lab/nodes/node.ts';
import { RELEASE_NAMESPACE, upRealNodes } from '../../lab/nodes/up.ts';
import { run } from '../../lab/sh.ts';
import { REPO, type LabState } from '../../lab/state.ts';

const PREFIX = 'tc2';
const STATE_DIR = join(REPO, '.cache', 'containerd2-bench');
const CONFLIST = join('etc', 'cni', 'net.d', '10-trellis.conflist');
const AGENT_SOCKET = '/run/trellis/cni.sock'; // the agent's socket inside the node (hostPath /run/trellis)

type Counts = Record<string, number>;

/** CNI requests an agent served, by command (ok and error summed), from its metrics endpoint. */
async function cniCounts(ip: string): Promise<Counts> {
  const text = await (await fetch(`http://${ip}:${AGENT_METRICS_PORT}/metrics`)).text();
  const counts: Counts = {};
  for (const m of text.matchAll(/^trellis_agent_cni_requests_total\{([^}]*)\} (\d+)/gm)) {
    const command = /command="([^"]+)"/.exec(m[1]!)?.[1] ?? '?';
    counts[command] = (counts[command] ?? 0) + Number(m[2]);
  }
  return counts;
}

async function countsByNode(state: LabState): Promise<Record<string, Counts>> {
  const out: Record<string, Counts> = {};
  for (const n of state.nodes) out[n.name] = await cniCounts(n.ip);
  return out;
}

const sum = (c: Record<string, Counts>, cmd: string): number =>
  Object.values(c).reduce((a, x) => a + (x[cmd] ?? 0), 0);

/** What a user does: `spec.agent.cniVersion` on the ClusterNetwork; the agents roll and reinstall. */
async function setConflistVersion(kube: KubeClient, state: LabState, version: string): Promise<number> {
  const t0 = Date.now();
  await kube.mergePatch(ClusterNetworkResource, 'default', { spec: { agent: { cniVersion: version } } });
  const onNodes = (): boolean =>
    state.nodes.every((n) => {
      try {
        return (
          (JSON.parse(readFileSync(join(n.root, CONFLIST), 'utf8')) as { cniVersion: string }).cniVersion ===
          version
        );
      } catch {
        return false;
      }
    });
  while (!onNodes()) {
    if (Date.now() - t0 > 180_000)
      throw new Error(`the agents did not install a ${version} conflist in 180 s`);
    await sleep(250);
  }
  return (Date.now() - t0) / 1000;
}

type NodeObj = KubeObject<
  unknown,
  {
    nodeInfo?: { containerRuntimeVersion?: string };
    conditions?: { type: string; status: string; message?: string }[];
  }
>;

/** Waits until the node's Ready condition has `status`; returns its message. */
async function nodeCondition(
  kube: KubeClient,
  node: string,
  status: string,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await kube.get<NodeObj>(Builtin.Node, node);
    const c = n.status?.conditions?.find((x) => x.type === 'Ready');
    if (c?.status === status) return c.message ?? '';
    if (Date.now() > deadline)
      throw new Error(`${node} not Ready=${status} after ${timeoutMs} ms: ${c?.message}`);
    await sleep(250);
  }
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const say = (l: string): void => void process.stderr.write(`[containerd2] ${l}\n`);
  await down({ stateDir: STATE_DIR, prefix: PREFIX });
  const state = await upRealNodes({
    nodes: 2,
    backend: 'vxlan',
    stateDir: STATE_DIR,
    prefix: PREFIX,
    subnet: '198.18.14',
    force: true,
    containerd: 2,
    say,
  });
  const kube = await KubeClient.fromKubeconfig(state.kubeconfig);
  try {
    const upSeconds = (Date.now() - t0) / 1000;
    const nodes = (await kube.listAll<NodeObj>(Builtin.Node)).items;
    const runtimes = nodes.map((n) => `${n.metadata.name}=${n.status?.nodeInfo?.containerRuntimeVersion}`);

    const pods = await realDemo(kube, state, 2, 'trellis/probe:0.1.0');
    const before = await countsByNode(state);
    await sleep(20_000);
    const at100 = await countsByNode(state);

    const rolled = await setConflistVersion(kube, state, '1.1.0');
    const at110start = await countsByNode(state); // the agents restarted: their counters too
    await sleep(20_000);
    const at110 = await countsByNode(state);
    const more = await realDemo(kube, state, 3, 'trellis/probe:0.1.0');
    const after = await countsByNode(state);
    const ready = (await kube.listAll<NodeObj>(Builtin.Node)).items.map(
      (n) => `${n.metadata.name}=${n.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? '?'}`,
    );

    // The runtime's view: with no agent answering on node1 the plugin's STATUS fails, containerd
    // reports NetworkReady=false and kubelet marks the node NotReady; the agent back, Ready again.
    const node1 = state.nodes[0]!;
    const t1 = Date.now();
    run(inNode(state, node1, ['rm', '-f', AGENT_SOCKET]));
    const notReady = await nodeCondition(kube, node1.name, 'False', 90_000);
    const downSeconds = (Date.now() - t1) / 1000;
    const agent = (
      await kube.listAll<KubeObject<{ nodeName?: string }>>(Builtin.Pod, RELEASE_NAMESPACE, {
        labelSelector: 'app.kubernetes.io/name=trellis-agent',
      })
    ).items.find((p) => p.spec?.nodeName === node1.name)!;
    const t2 = Date.now();
    await kube.delete(Builtin.Pod, agent.metadata.name, RELEASE_NAMESPACE);
    await nodeCondition(kube, node1.name, 'True', 120_000);
    const backSeconds = (Date.now() - t2) / 1000;

    const lines = [
      `nodes: ${runtimes.join(', ')}; lab up ${upSeconds.toFixed(0)} s`,
      `pods started through containerd 2 (ADD): ${pods.length} (${pods.map((p) => `${p.node}:${p.ip}`).join(' ')})`,
      `conflist cniVersion 1.0.0, 20 s: STATUS ${sum(at100, 'STATUS') - sum(before, 'STATUS')}, GC ${sum(at100, 'GC') - sum(before, 'GC')}`,
      `spec.agent.cniVersion 1.1.0: agents rolled and installed the 1.1.0 conflist on every node in ${rolled.toFixed(1)} s`,
      `conflist cniVersion 1.1.0, 20 s: STATUS ${sum(at110, 'STATUS') - sum(at110start, 'STATUS')} (per node: ${state.nodes.map((n) => `${n.name} ${(at110[n.name]!.STATUS ?? 0) - (at110start[n.name]!.STATUS ?? 0)}`).join(', ')}), GC ${sum(at110, 'GC') - sum(at110start, 'GC')}`,
      `after: ${more.length} pods Ready with the 1.1.0 conflist; nodes Ready: ${ready.join(', ')}`,
      `agent socket removed on ${node1.name}: node NotReady after ${downSeconds.toFixed(1)} s ("${notReady}")`,
      `agent pod deleted, DaemonSet brought it back: node Ready after ${backSeconds.toFixed(1)} s`,
      `every command the agents served: ${JSON.stringify(after)}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await kube.close();
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
  }
}

await main();
