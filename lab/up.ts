// `trellis lab up`: the whole lab on this machine, in dependency order: underlay and machines, the
// control plane on the underlay, CRDs, Node objects, the operator, the ClusterNetwork, then on every
// node the agent (from the rendered DaemonSet) and the simulated kubelet. Each step says what it did
// so a failure points at the right log.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import { ClusterNetworkResource, API_VERSION } from '../src/api/group.ts';
import { startControlPlane } from '../src/controlplane/controlplane.ts';
import { KubeClient } from '../src/kube/client.ts';
import { installCrds } from '../src/kube/crds.ts';
import { Builtin } from '../src/kube/resource.ts';
import { findAgentDaemonSet, startAgent, waitAgentsReady } from './agents.ts';
import { loadFirstConfList } from '../src/cni/runner-config.ts';
import { down } from './down.ts';
import { PROBE_PORT } from './probe.ts';
import { startDetached } from './spawn.ts';
import { installStandIn } from './standin.ts';
import { createBridge, createNode, createOutside } from './underlay.ts';
import { createRacks, internalIP, labBgpSpec, planRacks } from './racks.ts';
import { createDataBridge, createDataNics } from './databridge.ts';
import {
  NODE_BIN,
  REPO,
  UserError,
  planLab,
  readState,
  saveState,
  underlayIPv6,
  type BackendMode,
  type LabNode,
  type LabState,
} from './state.ts';
import { pollUntil } from './poll.ts';

export interface UpOptions {
  nodes: number;
  backend: BackendMode;
  stateDir: string;
  prefix: string;
  subnet: string;
  force?: boolean;
  standIn?: boolean;
  /** Racks (lab/racks.ts): each its own segment behind a BGP router. */
  racks?: number;
  /** real nodes: containerd 2.x built from its Go module instead of Debian's 1.6 */
  containerd?: 1 | 2;
  /** progress lines (stderr in the CLI) */
  say?: (line: string) => void;
  timeoutMs?: number;
}

/** Reference plugins a node has installed, like a distro's containernetworking-plugins package. */
const REFERENCE_PLUGINS = '/usr/lib/cni';

export function requireRoot(): void {
  if (process.getuid?.() !== 0)
    throw new UserError('the lab creates network namespaces and links: run it as root');
}

export function prepareNodeRoot(node: LabNode): void {
  const bin = join(node.root, 'opt', 'cni', 'bin');
  mkdirSync(bin, { recursive: true });
  mkdirSync(join(node.root, 'etc', 'cni', 'net.d'), { recursive: true });
  if (existsSync(REFERENCE_PLUGINS)) {
    for (const f of readdirSync(REFERENCE_PLUGINS)) {
      if (!existsSync(join(bin, f))) symlinkSync(join(REFERENCE_PLUGINS, f), join(bin, f));
    }
  }
}

/** The agent installs dist/trellis-cni on every node; the build script is a no-op when it is fresh. */
function buildPlugin(say: (l: string) => void): void {
  const script = join(REPO, 'hack', 'build-cni.sh');
  if (!existsSync(script)) return;
  say('CNI plugin (hack/build-cni.sh, rebuilt only when stale)');
  const res = spawnSync('bash', [script], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (res.status !== 0)
    throw new Error(`building the CNI plugin failed: ${res.stderr.trim().slice(-500)}; run bash ${script}`);
}

export async function createLabNodes(kube: KubeClient, state: LabState): Promise<void> {
  for (const node of state.nodes) {
    await kube.apply(Builtin.Node, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: node.name,
        labels: {
          'kubernetes.io/hostname': node.name,
          'kubernetes.io/os': 'linux',
          'lab.trellis.dev/node': 'true',
          ...(node.rack ? { 'lab.trellis.dev/rack': node.rack } : {}),
        },
      },
    });
    const now = new Date().toISOString();
    await kube.mergePatch(
      Builtin.Node,
      node.name,
      {
        status: {
          addresses: [
            { type: 'InternalIP', address: internalIP(node) },
            // dual-stack underlay (racks are IPv4 only)
            ...(node.rackIP ? [] : [{ type: 'InternalIP', address: underlayIPv6(node.ip) }]),
            { type: 'Hostname', address: node.name },
          ],
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'lab kubelet is posting ready status',
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
          nodeInfo: {
            architecture: process.arch === 'x64' ? 'amd64' : process.arch,
            operatingSystem: 'linux',
            kubeletVersion: 'v1.34.0-lab',
            kubeProxyVersion: '',
            bootID: '',
            containerRuntimeVersion: 'lab://0',
            kernelVersion: '',
            machineID: '',
            osImage: 'trellis lab',
            systemUUID: '',
          },
        },
      },
      undefined,
      'status',
    );
  }
}

export function clusterNetworkManifest(backend: BackendMode, state?: LabState) {
  return {
    apiVersion: API_VERSION,
    kind: 'ClusterNetwork',
    metadata: { name: 'default' },
    spec: {
      pools: [{ name: 'default', cidr: '10.244.0.0/16', blockSize: 26 }],
      backend: backend === 'bgp' && state ? { mode: backend, bgp: labBgpSpec(state) } : { mode: backend },
      masquerade: true,
    },
  };
}

export function startKubelet(state: LabState, node: LabNode): number {
  const script = join(REPO, 'lab', 'kubelet.ts');
  return startDetached(state.stateDir, {
    name: `kubelet-${node.name}`,
    // nsenter, not `ip netns exec`: the kubelet must stay in the host's mount namespace so the pod
    // netns it mounts under /run/netns are visible to every other process (agent, CLI, probes)
    cmd: [
      'nsenter',
      `--net=/run/netns/${node.netns}`,
      NODE_BIN,
      script,
      '--state',
      state.stateDir,
      '--node',
      node.name,
    ],
    cwd: REPO,
    logFile: join(state.stateDir, 'nodes', node.name, 'kubelet.log'),
    marker: script,
  });
}

export function startHostProbe(state: LabState, netns: string, name: string): void {
  const script = join(REPO, 'lab', 'probe.ts');
  startDetached(state.stateDir, {
    name: `probe-${name.replaceAll('/', '-')}`,
    cmd: ['ip', 'netns', 'exec', netns, NODE_BIN, script, '--name', name, '--port', String(PROBE_PORT)],
    logFile: join(state.stateDir, 'probes.log'),
    marker: script,
  });
}

/**
 * Waits until the operator reports the ClusterNetwork Ready for its current generation, so `lab up`
 * returns a lab that `kubectl get clusternetwork` shows Ready (not a few seconds of AgentsNotReady).
 */
export async function waitClusterNetworkReady(
  kube: KubeClient,
  name: string,
  timeoutMs: number,
  operatorLog: string,
): Promise<ClusterNetwork> {
  let last = 'no status yet';
  try {
    return await pollUntil(`ClusterNetwork ${name} Ready`, timeoutMs, async () => {
      const cn = await kube.getOrUndefined<ClusterNetwork>(ClusterNetworkResource, name);
      const ready = cn?.status?.conditions?.find((c) => c.type === 'Ready');
      if (ready) last = `Ready=${ready.status} ${ready.reason ?? ''}: ${ready.message ?? ''}`;
      const current = cn?.status?.observedGeneration === cn?.metadata.generation;
      return cn && current && ready?.status === 'True' ? cn : undefined;
    });
  } catch (err: unknown) {
    throw new Error(`${(err as Error).message} (last: ${last}); see ${operatorLog}`, { cause: err });
  }
}

export async function up(opts: UpOptions): Promise<LabState> {
  const say = opts.say ?? (() => undefined);
  const timeoutMs = opts.timeoutMs ?? 180_000;
  requireRoot();
  const existing = readState(opts.stateDir);
  if (existing) {
    if (!opts.force) {
      throw new UserError(
        `a lab is already up in ${opts.stateDir} (${existing.nodes.length} nodes, ${existing.backend}); ` +
          'use `trellis lab status`, `trellis lab down`, or `trellis lab up --force` to replace it',
      );
    }
    say('tearing down the existing lab (--force)');
    await down({ stateDir: opts.stateDir });
  }
  const state = planLab(opts);
  if (opts.racks) planRacks(state, opts.racks);
  state.standIn = !!opts.standIn;
  if (!opts.standIn && !process.env.TRELLIS_LAB_OPERATOR && !existsSync(join(REPO, 'operator', 'main.ts'))) {
    throw new UserError(
      'operator/main.ts is missing; use --stand-in to run the lab with the reference bridge plugin',
    );
  }
  if (!opts.standIn) buildPlugin(say);
  mkdirSync(state.stateDir, { recursive: true });
  saveState(state); // from here on `lab down` can clean up whatever exists
  try {
    say(
      `underlay ${state.bridge} ${state.gateway}/24, ${state.nodes.length} nodes, outside host ${state.outside.ip}`,
    );
    createBridge(state);
    createDataBridge(state);
    for (const node of state.nodes) {
      createNode(state, node);
      createDataNics(state, node);
      prepareNodeRoot(node);
    }
    createOutside(state);
    if (state.racks) {
      say(
        `${state.racks.length} racks, each behind a BGP router (${state.racks.map((r) => `${r.name} ${r.subnet}.0/24 AS ${r.asNumber}`).join(', ')})`,
      );
      createRacks(state);
    }
    startHostProbe(state, state.outside.netns, 'outside');
    for (const node of state.nodes) startHostProbe(state, node.netns, `node/${node.name}`);

    say('control plane (etcd + kube-apiserver) on the underlay');
    await startControlPlane({
      dir: join(state.stateDir, 'controlplane'),
      detached: true,
      bindAddress: state.gateway,
      // watches only (a few lines per watch): tests count the watches each agent holds open
      audit: ['watch'],
    });
    const kube = await KubeClient.fromKubeconfig(state.kubeconfig);
    try {
      await installCrds(kube);
      await createLabNodes(kube, state);

      if (state.standIn) {
        say('stand-in CNI: reference bridge + host-local + portmap');
        installStandIn(state);
      } else {
        // TRELLIS_LAB_OPERATOR runs another build of the operator (a developer's branch)
        const operator = process.env.TRELLIS_LAB_OPERATOR ?? join(REPO, 'operator', 'main.ts');
        say(`operator ${operator}`);
        startDetached(state.stateDir, {
          name: 'operator',
          cmd: [NODE_BIN, operator],
          env: { ...process.env, KUBECONFIG: state.kubeconfig },
          cwd: REPO,
          logFile: join(state.stateDir, 'operator.log'),
          marker: operator,
        });
        say(`ClusterNetwork default (backend ${state.backend}, pool 10.244.0.0/16 /26, masquerade)`);
        await kube.apply(ClusterNetworkResource, clusterNetworkManifest(state.backend, state));
        await pollUntil(
          `the operator to render the agent DaemonSet (see ${join(state.stateDir, 'operator.log')})`,
          timeoutMs,
          () => findAgentDaemonSet(kube),
        );
        for (const node of state.nodes) {
          say(`agent on ${node.name}`);
          await startAgent(kube, state, node);
        }
      }
      for (const node of state.nodes) startKubelet(state, node);
      for (const node of state.nodes) {
        await pollUntil(
          `a CNI config on ${node.name} (see ${join(state.stateDir, 'nodes', node.name, 'agent.log')})`,
          timeoutMs,
          () => loadFirstConfList(join(node.root, 'etc', 'cni', 'net.d')) ?? undefined,
        );
      }
      if (!state.standIn) {
        say('waiting for every agent to report Ready');
        await waitAgentsReady(kube, state, timeoutMs);
        say('waiting for ClusterNetwork default to be Ready');
        await waitClusterNetworkReady(kube, 'default', timeoutMs, join(state.stateDir, 'operator.log'));
      }
    } finally {
      await kube.close();
    }
    say(`lab up; kubeconfig: ${state.kubeconfig}`);
    return state;
  } catch (err: unknown) {
    say(
      `lab up failed; the partial lab stays for inspection until \`trellis lab down\` (state ${state.stateDir})`,
    );
    throw err;
  }
}
