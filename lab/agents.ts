// Runs the agent on each simulated node from the DaemonSet the operator rendered (fetched from the
// API each time, never hard-coded), inside the node's netns, detached, logging to the node folder.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeNetworkStatusResource } from '../src/api/group.ts';
import { nodeBoundToken, writeTokenKubeconfig } from '../src/controlplane/tokens.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { isApiError } from '../src/kube/errors.ts';
import type { KubeList, KubeObject } from '../src/kube/object.ts';
import { Builtin } from '../src/kube/resource.ts';
import {
  agentContainer,
  configMapsOf,
  launchSpec,
  type DaemonSetLike,
  type LaunchSpec,
  type PodSpec,
} from './daemonset.ts';
import { inNetns, run } from './sh.ts';
import { startDetached } from './spawn.ts';
import { NODE_BIN, REPO, killRecordedProcess, livePid, type LabNode, type LabState } from './state.ts';

export const AGENT_NAMESPACE = 'trellis-system';

export async function findAgentDaemonSet(kube: KubeClient): Promise<DaemonSetLike | undefined> {
  const list = await kube.list<KubeObject & DaemonSetLike>(Builtin.DaemonSet, AGENT_NAMESPACE);
  const items = (list as KubeList<KubeObject & DaemonSetLike>).items;
  return (
    items.find((d) => d.metadata.name === 'trellis-agent') ??
    items.find((d) => d.metadata.labels?.['app.kubernetes.io/name'] === 'trellis-agent') ??
    items.find((d) => d.metadata.name.includes('agent')) ??
    items[0]
  );
}

export function agentProcessName(node: LabNode): string {
  return `agent-${node.name}`;
}

export function agentLog(state: LabState, node: LabNode): string {
  return join(state.stateDir, 'nodes', node.name, 'agent.log');
}

async function planAgent(
  kube: KubeClient,
  state: LabState,
  node: LabNode,
  ds: DaemonSetLike,
): Promise<{ init: LaunchSpec[]; main: LaunchSpec }> {
  const spec = ds.spec?.template?.spec as PodSpec | undefined;
  if (!spec) throw new Error(`DaemonSet ${AGENT_NAMESPACE}/${ds.metadata.name} has no pod template`);
  const configMaps: Record<string, Record<string, string>> = {};
  for (const name of configMapsOf(spec)) {
    const cm = await kube.getOrUndefined<KubeObject & { data?: Record<string, string> }>(
      Builtin.ConfigMap,
      name,
      AGENT_NAMESPACE,
    );
    if (cm) configMaps[name] = cm.data ?? {};
  }
  const ctx = {
    nodeName: node.name,
    nodeIP: node.ip,
    nodeRoot: node.root,
    volumesDir: join(state.stateDir, 'nodes', node.name, 'volumes'),
    repo: REPO,
    nodeBin: NODE_BIN,
    kubeconfig: agentKubeconfigPath(state, node),
    configMaps,
  };
  return {
    init: (spec.initContainers ?? []).map((c) => launchSpec(ds, c, ctx)),
    main: launchSpec(ds, agentContainer(spec), ctx),
  };
}

/**
 * The agent's credentials on this node: a token of the DaemonSet's ServiceAccount bound to the Node,
 * so the API server authenticates it with the node's name (authentication.kubernetes.io/node-name),
 * as it does a real agent Pod's projected token; the agent admission policy relies on that name.
 */
async function writeAgentKubeconfig(
  kube: KubeClient,
  state: LabState,
  node: LabNode,
  ds: DaemonSetLike,
): Promise<string> {
  const namespace = ds.metadata.namespace ?? AGENT_NAMESPACE;
  const sa = ds.spec?.template?.spec?.serviceAccountName ?? 'default';
  // the operator applies the ServiceAccount with the DaemonSet; give it a moment to appear
  let token: string | undefined;
  for (const deadline = Date.now() + 30_000; !token;) {
    try {
      token = await nodeBoundToken(kube, namespace, sa, node.name);
    } catch (err: unknown) {
      if (!isApiError(err, 404) || Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
  const path = agentKubeconfigPath(state, node);
  mkdirSync(dirname(path), { recursive: true });
  return writeTokenKubeconfig(state.kubeconfig, path, `system:serviceaccount:${namespace}:${sa}`, token);
}

function agentKubeconfigPath(state: LabState, node: LabNode): string {
  return join(state.stateDir, 'nodes', node.name, 'agent.kubeconfig');
}

function prepare(l: LaunchSpec): void {
  for (const d of l.dirs) mkdirSync(d, { recursive: true });
  for (const [path, content] of Object.entries(l.files)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
}

function containerEnv(l: LaunchSpec): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', ...l.env };
}

/**
 * Starts (or restarts) the agent of one node; answers its pid. `extraEnv` is added to the
 * container's environment (a benchmark runs agents with TRELLIS_POLICY=off to put a peer's policy
 * agent in their place).
 */
export async function startAgent(
  kube: KubeClient,
  state: LabState,
  node: LabNode,
  extraEnv: Record<string, string> = {},
): Promise<number> {
  const ds = await findAgentDaemonSet(kube);
  if (!ds)
    throw new Error(
      `no agent DaemonSet in namespace ${AGENT_NAMESPACE}; see ${join(state.stateDir, 'operator.log')}`,
    );
  const plan = await planAgent(kube, state, node, ds);
  await writeAgentKubeconfig(kube, state, node, ds);
  for (const l of [...plan.init, plan.main]) prepare(l);
  for (const l of plan.init) {
    // init containers run to completion before the main one, as on a real node
    const out = run(
      inNetns(node.netns, ['env', ...Object.entries(containerEnv(l)).map(([k, v]) => `${k}=${v}`), ...l.cmd]),
    );
    if (out) writeFileSync(agentLog(state, node), out, { flag: 'a' });
  }
  killRecordedProcess(state.stateDir, agentProcessName(node));
  const pid = startDetached(state.stateDir, {
    name: agentProcessName(node),
    cmd: inNetns(node.netns, plan.main.cmd),
    env: { ...containerEnv(plan.main), ...extraEnv },
    cwd: REPO,
    logFile: agentLog(state, node),
    marker: plan.main.cmd[1] ?? plan.main.cmd[0],
  });
  writeFileSync(templateFile(state, node), JSON.stringify({ hash: templateHash(ds), pid }));
  return pid;
}

function templateFile(state: LabState, node: LabNode): string {
  return join(state.stateDir, 'nodes', node.name, 'agent-template.json');
}

/** Identifies a pod template, as the DaemonSet controller's controller-revision-hash does. */
export function templateHash(ds: DaemonSetLike): string {
  return createHash('sha256')
    .update(JSON.stringify(ds.spec?.template ?? {}))
    .digest('hex')
    .slice(0, 16);
}

/**
 * What a kubelet and the DaemonSet controller keep doing for the agent after it started: configMap
 * volumes follow their ConfigMap (rewritten atomically when they change), and a changed pod template
 * rolls the agent (SIGTERM, then the new template). A crashed agent is not restarted here, so a
 * crash can be studied; `trellis lab agent restart` starts it again. A deleted DaemonSet stops the
 * agent (SIGTERM), as its pods are garbage-collected on a real cluster (uninstall).
 */
export async function syncAgent(
  kube: KubeClient,
  state: LabState,
  node: LabNode,
): Promise<'rolled' | 'synced' | 'stopped' | 'none'> {
  const ds = await findAgentDaemonSet(kube);
  if (!existsSync(templateFile(state, node))) return 'none';
  if (!ds) {
    rmSync(templateFile(state, node), { force: true });
    await stopAgent(state, node);
    return 'stopped';
  }
  const started = JSON.parse(readFileSync(templateFile(state, node), 'utf8')) as { hash: string };
  if (started.hash !== templateHash(ds)) {
    await stopAgent(state, node);
    await startAgent(kube, state, node);
    return 'rolled';
  }
  const plan = await planAgent(kube, state, node, ds);
  for (const [path, content] of Object.entries(plan.main.files)) {
    if (existsSync(path) && readFileSync(path, 'utf8') === content) continue;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(`${path}.tmp`, content);
    renameSync(`${path}.tmp`, path);
  }
  return 'synced';
}

/** SIGTERMs a node's agent and waits (up to its grace period) for it to exit, as a kubelet does. */
async function stopAgent(state: LabState, node: LabNode): Promise<void> {
  const pid = agentPid(state, node);
  if (!pid) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  while (agentPid(state, node) && Date.now() < deadline) await sleep(100);
}

export function agentPid(state: LabState, node: LabNode): number | undefined {
  return livePid(state.stateDir, agentProcessName(node));
}

/** SIGKILLs a node's agent (crash simulation); answers whether one was running. */
export function killAgent(state: LabState, node: LabNode): boolean {
  return killRecordedProcess(state.stateDir, agentProcessName(node), 'SIGKILL');
}

/**
 * Waits until every node's agent reports Ready in its NodeNetworkStatus and, with
 * `peersWithBlocks`, has programmed that many peers (a peer counts once it owns a block, so this is
 * only meaningful after every node has pods).
 */
export async function waitAgentsReady(
  kube: KubeClient,
  state: LabState,
  timeoutMs: number,
  peersWithBlocks?: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const reports = await kube.listAll<NodeNetworkStatus>(NodeNetworkStatusResource);
    const lagging = state.nodes.filter((n) => {
      const r = reports.items.find((x) => x.metadata.name === n.name)?.status;
      return !r?.ready || (peersWithBlocks !== undefined && (r.peers ?? 0) < peersWithBlocks);
    });
    if (lagging.length === 0) return;
    last = lagging.map((n) => n.name).join(', ');
    if (Date.now() > deadline) {
      throw new Error(
        `agents on ${last} not ready${peersWithBlocks !== undefined ? ` with ${peersWithBlocks} peers` : ''} after ${timeoutMs} ms; see ${join(state.stateDir, 'nodes', '<node>', 'agent.log')}`,
      );
    }
    await sleep(250);
  }
}
