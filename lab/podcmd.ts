// Pod commands of the CLI: create a Pod bound to a lab node and wait for its IP, delete one and wait
// until the kubelet has torn it down, run a command in a pod's netns, and the demo set of pods.
import { spawnSync } from 'node:child_process';
import type { KubeClient } from '../src/kube/client.ts';
import { ApiError } from '../src/kube/errors.ts';
import { Builtin } from '../src/kube/resource.ts';
import { join } from 'node:path';
import { waitAgentsReady } from './agents.ts';
import { checkNetworkList } from '../src/cni/runner.ts';
import { podManifest, podNetnsName, readSandboxes, runtimeConfFor, type NewPod, type Pod } from './pods.ts';
import { netnsExists } from './sh.ts';
import { UserError, findNode, type LabState } from './state.ts';
import { pollUntil } from './poll.ts';

/** Pod waits poll a little faster than the lab's other waits: tests create many pods. */
const POD_POLL_MS = 200;

export async function ensureNamespace(kube: KubeClient, ns: string): Promise<void> {
  if (await kube.getOrUndefined(Builtin.Namespace, ns)) return;
  try {
    await kube.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  } catch (err: unknown) {
    if (!(err instanceof ApiError && err.code === 409)) throw err;
  }
}

export interface PodView {
  namespace: string;
  name: string;
  node: string;
  ip: string;
  ips: string[];
  phase: string;
  netns: string;
  hostPorts: number[];
}

export function podView(state: LabState, p: Pod): PodView {
  return {
    namespace: p.metadata.namespace ?? 'default',
    name: p.metadata.name,
    node: p.spec?.nodeName ?? '',
    ip: p.status?.podIP ?? '',
    ips: (p.status?.podIPs ?? []).map((x) => x.ip),
    phase: p.metadata.deletionTimestamp ? 'Terminating' : (p.status?.phase ?? 'Pending'),
    netns: podNetnsName(state.prefix, p.metadata.uid ?? ''),
    hostPorts: (p.spec?.containers ?? [])
      .flatMap((c) => (c.ports ?? []).map((x) => x.hostPort ?? 0))
      .filter(Boolean),
  };
}

/** Pods on the lab's nodes, sorted by node then name. */
export async function labPods(kube: KubeClient, state: LabState): Promise<PodView[]> {
  const nodes = new Set(state.nodes.map((n) => n.name));
  const pods = (await kube.listAll<Pod>(Builtin.Pod)).items.filter((p) => nodes.has(p.spec?.nodeName ?? ''));
  return pods
    .map((p) => podView(state, p))
    .sort(
      (a, b) =>
        a.node.localeCompare(b.node) ||
        a.namespace.localeCompare(b.namespace) ||
        a.name.localeCompare(b.name),
    );
}

export async function createPod(
  kube: KubeClient,
  state: LabState,
  p: NewPod,
  opts: { wait?: boolean; timeoutMs?: number } = {},
): Promise<PodView> {
  findNode(state, p.node);
  await ensureNamespace(kube, p.namespace);
  try {
    await kube.create(Builtin.Pod, podManifest(p));
  } catch (err: unknown) {
    if (err instanceof ApiError && err.code === 409)
      throw new UserError(`pod ${p.namespace}/${p.name} already exists; delete it first`);
    throw err;
  }
  if (opts.wait === false)
    return podView(state, (await kube.get<Pod>(Builtin.Pod, p.name, p.namespace)) as Pod);
  const node = state.nodes.find((n) => n.name === p.node);
  const pod = await pollUntil(
    `pod ${p.namespace}/${p.name} to get an IP (see ${state.stateDir}/nodes/${node?.name}/kubelet.log and agent.log)`,
    opts.timeoutMs ?? 90_000,
    async () => {
      const got = await kube.get<Pod>(Builtin.Pod, p.name, p.namespace);
      return got.status?.podIP ? got : undefined;
    },
    POD_POLL_MS,
  );
  return podView(state, pod);
}

export async function getPod(
  kube: KubeClient,
  state: LabState,
  name: string,
  namespace: string,
): Promise<PodView> {
  const pod = await kube.getOrUndefined<Pod>(Builtin.Pod, name, namespace);
  if (!pod)
    throw new UserError(`pod ${namespace}/${name} not found; \`trellis lab status\` lists the lab's pods`);
  return podView(state, pod);
}

/** Deletes a pod and waits until the kubelet has run DEL and removed it. */
export async function deletePod(
  kube: KubeClient,
  state: LabState,
  name: string,
  namespace: string,
  timeoutMs = 90_000,
): Promise<PodView> {
  const view = await getPod(kube, state, name, namespace);
  await kube.delete(Builtin.Pod, name, namespace);
  await pollUntil(
    `pod ${namespace}/${name} to be torn down by the kubelet on ${view.node}`,
    timeoutMs,
    async () => ((await kube.getOrUndefined(Builtin.Pod, name, namespace)) ? undefined : true),
    POD_POLL_MS,
  );
  return view;
}

/** Runs a command in a pod's netns with the terminal attached; answers its exit status. */
export async function execInPod(
  kube: KubeClient,
  state: LabState,
  name: string,
  namespace: string,
  cmd: string[],
): Promise<number> {
  if (cmd.length === 0)
    throw new UserError('nothing to run: give the command after --, e.g. `trellis lab exec web -- ip addr`');
  const view = await getPod(kube, state, name, namespace);
  if (!netnsExists(view.netns))
    throw new UserError(`pod ${namespace}/${name} has no network namespace yet (phase ${view.phase})`);
  const res = spawnSync('ip', ['netns', 'exec', view.netns, ...cmd], { stdio: 'inherit' });
  if (res.error) throw new UserError(`could not run ${cmd[0]}: ${res.error.message}`);
  return res.status ?? 1;
}

/** Two pods per node (idempotent), each waited for until it has an IP. */
export async function demo(kube: KubeClient, state: LabState, perNode = 2): Promise<PodView[]> {
  const want: NewPod[] = state.nodes.flatMap((n) =>
    Array.from({ length: perNode }, (_, i) => ({
      name: `demo-${n.name}-${String.fromCharCode(97 + i)}`,
      namespace: 'default',
      node: n.name,
      labels: { app: 'demo' },
    })),
  );
  const out: PodView[] = [];
  await Promise.all(
    want.map(async (p) => {
      const existing = await kube.getOrUndefined<Pod>(Builtin.Pod, p.name, p.namespace);
      if (!existing) await createPod(kube, state, p, { wait: false });
    }),
  );
  for (const p of want) {
    out.push(
      await pollUntil(
        `pod ${p.namespace}/${p.name} to get an IP`,
        120_000,
        async () => {
          const got = await kube.get<Pod>(Builtin.Pod, p.name, p.namespace);
          return got.status?.podIP ? podView(state, got) : undefined;
        },
        POD_POLL_MS,
      ),
    );
  }
  // every node now owns a block: wait until each agent routes to all the others
  if (!state.standIn) await waitAgentsReady(kube, state, 60_000, state.nodes.length - 1);
  return out;
}

/**
 * Runs CNI CHECK through the pod's chain with the cached ADD result, from the pod's node netns,
 * as a runtime does for a running sandbox. Throws CniInvokeError naming the plugin that objected.
 */
export async function checkPod(
  kube: KubeClient,
  state: LabState,
  name: string,
  namespace: string,
): Promise<{ pod: PodView; plugins: string[] }> {
  const view = await getPod(kube, state, name, namespace);
  const node = findNode(state, view.node);
  const rec = readSandboxes(state, node).find((r) => r.namespace === namespace && r.name === name);
  if (!rec?.result || !rec.conflist)
    throw new UserError(`pod ${namespace}/${name} has no network set up yet (phase ${view.phase})`);
  const binDir = join(node.root, 'opt', 'cni', 'bin');
  await checkNetworkList(
    { binDirs: [binDir], wrap: ['nsenter', `--net=/run/netns/${node.netns}`] },
    rec.conflist,
    runtimeConfFor(rec),
    rec.result,
  );
  return { pod: view, plugins: rec.conflist.plugins.map((p) => p.type) };
}
