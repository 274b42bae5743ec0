// `trellis lab up --real-nodes`: the lab as a real cluster. The same underlay and node network
// namespaces as the simulated lab, but each node runs containerd + kubelet (node.ts), the control
// plane adds kube-controller-manager and kube-scheduler, our images are imported into every node,
// and Trellis is installed the way a user installs it: `helm install trellis charts/trellis`.
// The agent is then a real privileged hostNetwork DaemonSet pod and containerd calls our plugin.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterNetworkResource } from '../../src/api/group.ts';
import { cacheDir } from '../../src/controlplane/binaries.ts';
import { startControlPlane } from '../../src/controlplane/controlplane.ts';
import { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { waitAgentsReady } from '../agents.ts';
import { down } from '../down.ts';
import { REPO, UserError, planLab, readState, saveState, type LabState } from '../state.ts';
import { createBridge, createNode, createOutside } from '../underlay.ts';
import { prepareNodeRoot, requireRoot, startHostProbe, type UpOptions } from '../up.ts';
import { startControllers } from './controllers.ts';
import { CONTAINERD2_VERSION, installModernPortmap, startRealNode } from './node.ts';
import { pollUntil } from '../poll.ts';

export const RELEASE = 'trellis';
export const RELEASE_NAMESPACE = 'trellis-system';
const IMAGES = ['pause', 'operator', 'agent', 'probe'];

function step(say: (l: string) => void, what: string, cmd: string[]): string {
  say(what);
  const res = spawnSync(cmd[0]!, cmd.slice(1), { cwd: REPO, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (res.status !== 0)
    throw new Error(
      `${what} failed (${cmd.join(' ')}): ${(res.stderr || res.stdout || String(res.error)).trim().slice(-800)}`,
    );
  return res.stdout;
}

/** A set-up script whose progress the user should see (Go builds take minutes on a fresh machine). */
function visibleStep(say: (l: string) => void, what: string, cmd: string[]): void {
  say(what);
  const res = spawnSync(cmd[0]!, cmd.slice(1), {
    cwd: REPO,
    stdio: ['ignore', process.stderr, process.stderr],
  });
  if (res.status !== 0) throw new Error(`${what} failed (${cmd.join(' ')}); its output is above`);
}

export function helmBin(): string {
  const helm = process.env.TRELLIS_HELM ?? join(cacheDir(), 'bin', 'helm');
  if (!existsSync(helm))
    throw new UserError(`no helm at ${helm}: run make setup (hack/build-tools.sh builds it)`);
  return helm;
}

/** `helm install|upgrade` of the chart onto the lab, with the lab's backend. */
export function helmArgs(state: LabState, verb: 'install' | 'upgrade', extra: string[] = []): string[] {
  return [
    helmBin(),
    verb,
    RELEASE,
    join(REPO, 'charts', 'trellis'),
    '--kubeconfig',
    state.kubeconfig,
    '--namespace',
    RELEASE_NAMESPACE,
    ...(verb === 'install' ? ['--create-namespace'] : ['--reuse-values']),
    '--set',
    'clusterNetwork.enabled=true',
    '--set',
    `clusterNetwork.spec.backend.mode=${state.backend}`,
    ...extra,
  ];
}

type NodeLike = KubeObject<unknown, { conditions?: { type: string; status: string }[] }>;

export async function waitNodesReady(kube: KubeClient, state: LabState, timeoutMs: number): Promise<void> {
  await pollUntil(
    `every node Ready (see ${join(state.stateDir, 'nodes', '<node>', 'kubelet.log')})`,
    timeoutMs,
    async () => {
      const nodes = (await kube.listAll<NodeLike>(Builtin.Node)).items;
      const ready = state.nodes.every((n) =>
        nodes
          .find((x) => x.metadata.name === n.name)
          ?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      return ready ? true : undefined;
    },
  );
}

export async function waitClusterNetworkReady(kube: KubeClient, timeoutMs: number): Promise<void> {
  await pollUntil('ClusterNetwork default Ready=True', timeoutMs, async () => {
    try {
      const cn = await kube.get<NodeLike>(ClusterNetworkResource, 'default');
      return cn.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
    } catch {
      return undefined;
    }
  });
}

export async function upRealNodes(opts: UpOptions): Promise<LabState> {
  const say = opts.say ?? (() => undefined);
  const timeoutMs = opts.timeoutMs ?? 300_000;
  requireRoot();
  if (readState(opts.stateDir)) {
    if (!opts.force)
      throw new UserError(`a lab is already up in ${opts.stateDir}; use \`trellis lab down\` or --force`);
    say('tearing down the existing lab (--force)');
    await down({ stateDir: opts.stateDir });
  }
  visibleStep(
    say,
    'containerd, runc, kubelet, kube-controller-manager, kube-scheduler (hack/setup-nodes.sh; Go builds cached in ~/.cache/trellis, minutes the first time)',
    ['bash', join(REPO, 'hack', 'setup-nodes.sh')],
  );
  if (opts.containerd === 2)
    visibleStep(
      say,
      'containerd 2.x and its runc shim (hack/build-containerd2.sh: cached in ~/.cache/trellis; minutes the first time)',
      ['bash', join(REPO, 'hack', 'build-containerd2.sh')],
    );
  step(say, 'CNI plugin (hack/build-cni.sh)', ['bash', join(REPO, 'hack', 'build-cni.sh')]);
  const built = step(say, 'images (images/build.ts: operator, agent, pause, probe as OCI archives)', [
    join(REPO, 'node_modules', '.bin', 'node'),
    join(REPO, 'images', 'build.ts'),
  ]);
  for (const l of built.trim().split('\n')) say(`  ${l}`);
  const tag = /trellis\/pause:(\S+)/.exec(built)?.[1] ?? '0.1.0';

  const state = planLab(opts);
  state.realNodes = true;
  if (opts.containerd === 2) state.containerd = 2;
  mkdirSync(state.stateDir, { recursive: true });
  saveState(state);
  try {
    say(
      `underlay ${state.bridge} ${state.gateway}/24, ${state.nodes.length} nodes, outside host ${state.outside.ip}`,
    );
    createBridge(state);
    for (const node of state.nodes) {
      createNode(state, node);
      prepareNodeRoot(node); // Debian's reference plugins (loopback, portmap) in the node's /opt/cni/bin
      if (state.containerd === 2) installModernPortmap(node);
    }
    createOutside(state);
    startHostProbe(state, state.outside.netns, 'outside');

    say(
      'control plane: etcd, kube-apiserver (Node authorizer, ServiceAccount admission), kube-controller-manager, kube-scheduler',
    );
    const cp = await startControlPlane({
      dir: join(state.stateDir, 'controlplane'),
      detached: true,
      bindAddress: state.gateway,
      realNodes: true,
    });
    startControllers(state, cp);
    const apiPort = Number(new URL(cp.server).port);
    for (const node of state.nodes) {
      say(
        `${node.name}: containerd ${state.containerd === 2 ? CONTAINERD2_VERSION : '1.6 (Debian)'} + kubelet in its own mount namespace, images imported`,
      );
      await startRealNode(state, node, {
        cp,
        apiPort,
        images: IMAGES.map((i) => join(REPO, 'dist', 'images', `${i}.oci.tar`)),
        pauseImage: `docker.io/trellis/pause:${tag}`,
        say,
      });
    }
    const kube = await KubeClient.fromKubeconfig(state.kubeconfig);
    try {
      await pollUntil('every kubelet to register its Node', timeoutMs, async () => {
        const nodes = (await kube.listAll<NodeLike>(Builtin.Node)).items;
        return state.nodes.every((n) => nodes.some((x) => x.metadata.name === n.name)) ? true : undefined;
      });
      step(
        say,
        `helm install ${RELEASE} charts/trellis (backend ${state.backend})`,
        helmArgs(state, 'install'),
      );
      say('waiting for the agents (DaemonSet pods) to report Ready and the nodes to go Ready');
      await waitAgentsReady(kube, state, timeoutMs);
      await waitNodesReady(kube, state, timeoutMs);
      await waitClusterNetworkReady(kube, timeoutMs);
    } finally {
      await kube.close();
    }
    say(`lab up (real nodes); kubeconfig: ${state.kubeconfig}`);
    return state;
  } catch (err: unknown) {
    say(
      `lab up failed; the partial lab stays for inspection until \`trellis lab down\` (state ${state.stateDir})`,
    );
    throw err;
  }
}
