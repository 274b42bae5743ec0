// End to end on a real cluster on this machine: 3 nodes each running kubelet + containerd in its
// own network and mount namespace, kube-controller-manager and kube-scheduler beside the API
// server, our OCI images imported into every node, and Trellis installed with
// `helm install trellis charts/trellis`. Every pod here is a real container started by containerd,
// which calls our plugin; the agent is a real privileged hostNetwork DaemonSet pod. One lab for the
// whole file (prefix `trn`, underlay 198.18.12.0/24, its own state dir), torn down after.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNetworkResource, IPBlockResource, NodeNetworkStatusResource } from '../../src/api/group.ts';
import type { IPBlock } from '../../src/api/ipam.ts';
import type { IpamView } from '../../src/ipam/show.ts';
import { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { kubectlPath } from '../../src/controlplane/binaries.ts';
import { down } from '../../lab/down.ts';
import { importImage } from '../../lab/nodes/node.ts';
import { spreadProbeDeployment } from '../../lab/nodes/demo.ts';
import {
  helmArgs,
  helmBin,
  RELEASE,
  RELEASE_NAMESPACE,
  upRealNodes,
  waitClusterNetworkReady,
  waitNodesReady,
} from '../../lab/nodes/up.ts';
import type { ProbeOutcome } from '../../lab/prober.ts';
import { linkExists, netnsExists } from '../../lab/sh.ts';
import { REPO, type LabState } from '../../lab/state.ts';
import type { PodObj, StatusReport } from '../../lab/cluster/status.ts';
import type { ConnectivityReport } from '../../lab/connectivity.ts';
import { Deployment } from '../../lab/cluster/status.ts';
import { eventually } from '../support/kube.ts';

const PREFIX = 'trn';
const SUBNET = '198.18.12';
const STATE_DIR = join(REPO, '.cache', 'realnodes-e2e');
const NO_LAB = join(REPO, '.cache', 'realnodes-e2e-nolab'); // TRELLIS_LAB_DIR with no lab: kubeconfig only
const NS = 'rn';
const UPGRADE_TAG = '0.1.0-upgrade';
const UPGRADE_DIR = join(REPO, '.cache', 'realnodes-e2e-images');

let state: LabState;
let kube: KubeClient;

function sh(cmd: string[], timeout = 120_000): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout, cwd: REPO, maxBuffer: 64 << 20 });
  return { status: res.status, stdout: res.stdout ?? '', stderr: res.stderr ?? String(res.error ?? '') };
}

function kubectlRaw(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return sh([kubectlPath(), '--kubeconfig', state.kubeconfig, ...args]);
}

function kubectl(...args: string[]): string {
  const r = sh([kubectlPath(), '--kubeconfig', state.kubeconfig, ...args]);
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The trellis CLI with no lab state: only the kubeconfig says which cluster. */
/** `trellis connectivity-test` against the lab through its kubeconfig; asserts it exits 0. */
function connectivityTest(): { stdout: string } {
  const res = cliNoLab([
    'connectivity-test',
    '--kubeconfig',
    state.kubeconfig,
    '--outside',
    state.outside.ip,
    '--json',
  ]);
  expect(res.status, res.stderr + res.stdout.slice(0, 2000)).toBe(0);
  return res;
}

function cliNoLab(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(join(REPO, 'bin', 'trellis'), args, {
    encoding: 'utf8',
    env: { ...process.env, TRELLIS_LAB_DIR: NO_LAB, KUBECONFIG: '' },
    timeout: 240_000,
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

async function pods(ns: string, selector?: string): Promise<PodObj[]> {
  return (await kube.listAll<PodObj>(Builtin.Pod, ns, selector ? { labelSelector: selector } : {})).items;
}

const isReady = (p: PodObj): boolean =>
  !p.metadata.deletionTimestamp &&
  p.status?.phase === 'Running' &&
  !!p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

async function readyPods(
  ns: string,
  selector: string,
  n: number,
  what: string,
  timeoutMs = 120_000,
): Promise<PodObj[]> {
  return eventually(
    async () => {
      const ps = (await pods(ns, selector)).filter(isReady);
      return ps.length >= n ? ps : undefined;
    },
    what,
    timeoutMs,
    300,
  );
}

async function allocationOf(ip: string): Promise<string | undefined> {
  for (const b of (await kube.listAll<IPBlock>(IPBlockResource)).items) {
    const a = b.spec?.allocations?.[ip];
    if (a) return `${a.namespace}/${a.pod}`;
  }
  return undefined;
}

function prober(pod: string, targets: object[]): ProbeOutcome[] {
  const out = kubectl('exec', '-n', NS, pod, '--', '/usr/local/bin/trellis-prober', JSON.stringify(targets));
  return JSON.parse(out) as ProbeOutcome[];
}

/** Pings from a pod for `seconds`, every 0.2 s; resolves with what ping counted. */
function pingFor(
  pod: string,
  ip: string,
  seconds: number,
): Promise<{ sent: number; received: number; text: string }> {
  return new Promise((resolve) => {
    const p = spawn(kubectlPath(), [
      '--kubeconfig',
      state.kubeconfig,
      'exec',
      '-n',
      NS,
      pod,
      '--',
      'ping',
      '-n',
      '-q',
      '-i',
      '0.2',
      '-w',
      String(seconds),
      ip,
    ]);
    let text = '';
    p.stdout.on('data', (d: Buffer) => (text += d.toString()));
    p.stderr.on('data', (d: Buffer) => (text += d.toString()));
    p.on('close', () => {
      const m = /(\d+) packets transmitted, (\d+) received/.exec(text);
      resolve({ sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), text });
    });
  });
}

/** One pod on each of two different nodes. */
function pairAcrossNodes(ps: PodObj[]): [PodObj, PodObj][] {
  const byNode = new Map<string, PodObj>();
  for (const p of ps) if (!byNode.has(p.spec?.nodeName ?? '')) byNode.set(p.spec?.nodeName ?? '', p);
  const one = [...byNode.values()];
  return one.map((p, i) => [p, one[(i + 1) % one.length]!]);
}

/** The agent process of a node, found as the kernel sees it: node.mjs in that node's netns. */
function agentPids(netns: string): number[] {
  const ino = statSync(`/run/netns/${netns}`).ino;
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return (
          readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('/opt/trellis/lib/agent.mjs') &&
          statSync(`/proc/${p}/ns/net`).ino === ino
        );
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function agentPodOn(node: string): Promise<PodObj | undefined> {
  return (await pods(RELEASE_NAMESPACE, 'app.kubernetes.io/name=trellis-agent')).find(
    (p) => p.spec?.nodeName === node && !p.metadata.deletionTimestamp,
  );
}

function nodeFile(node: string, path: string): string {
  return join(STATE_DIR, 'nodes', node, 'root', path);
}

describe('real-node lab: kubelet + containerd nodes, Trellis installed by Helm', () => {
  beforeAll(async () => {
    mkdirSync(NO_LAB, { recursive: true });
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
    state = await upRealNodes({
      nodes: 3,
      backend: 'vxlan',
      stateDir: STATE_DIR,
      prefix: PREFIX,
      subnet: SUBNET,
      force: true,
      say: (l) => process.stderr.write(`[realnodes] ${l}\n`),
    });
    kube = await KubeClient.fromKubeconfig(state.kubeconfig);
    await kube.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  });

  afterAll(async () => {
    await kube?.close();
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
    // nothing of the lab is left: no netns, no bridge, no kubelet/containerd/agent process
    expect(netnsExists(`${PREFIX}-node1`)).toBe(false);
    expect(linkExists(`${PREFIX}-br0`)).toBe(false);
    expect(existsSync(`/run/trellis-lab/${PREFIX}`)).toBe(false);
    expect(sh(['pgrep', '-f', join(STATE_DIR, 'nodes')]).stdout.trim()).toBe('');
  });

  it('helm install runs the operator and one agent pod per node; trellis status sees it through the kubeconfig only', async () => {
    // the DaemonSet controller counts ready pods a moment after they are Ready
    const st = await eventually(
      async () => {
        const res = cliNoLab(['status', '--kubeconfig', state.kubeconfig, '--json']);
        return res.status === 0 ? (JSON.parse(res.stdout) as StatusReport) : undefined;
      },
      'trellis status OK',
      30_000,
      1000,
    );
    expect(st.ok).toBe(true);
    expect(st.operator).toMatchObject({ namespace: RELEASE_NAMESPACE, ready: 1 });
    expect(st.nodes.map((n) => [n.node, n.nodeReady, n.podReady, n.reportReady])).toEqual([
      ['node1', true, true, true],
      ['node2', true, true, true],
      ['node3', true, true, true],
    ]);
    expect(st.clusterNetworks[0]?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'True' }),
    );
    // the agent pods are the DaemonSet's, from our image, on the host network
    const agents = await pods(RELEASE_NAMESPACE, 'app.kubernetes.io/name=trellis-agent');
    expect(agents.map((p) => p.spec?.nodeName).sort()).toEqual(['node1', 'node2', 'node3']);
    for (const p of agents)
      expect(p.status?.podIP).toBe(state.nodes.find((n) => n.name === p.spec?.nodeName)?.ip);
    // ... which installed the plugin and conflist through hostPath into each node's own folders
    for (const n of state.nodes) {
      expect(existsSync(nodeFile(n.name, 'etc/cni/net.d/10-trellis.conflist'))).toBe(true);
      expect(existsSync(nodeFile(n.name, 'opt/cni/bin/trellis'))).toBe(true);
    }
    expect(existsSync('/etc/cni/net.d/10-trellis.conflist')).toBe(false); // not the machine's
    expect(kubectl('logs', '-n', RELEASE_NAMESPACE, agents[0]!.metadata.name)).toContain(
      'installed CNI conflist',
    );
    // neither image carries a shell: the agent runs its commands as argv, the operator runs none
    const [operator] = await pods(RELEASE_NAMESPACE, 'app.kubernetes.io/name=trellis-operator');
    for (const pod of [agents[0]!, operator!]) {
      const sh = kubectlRaw(
        'exec',
        '-n',
        RELEASE_NAMESPACE,
        pod.metadata.name,
        '--',
        '/bin/sh',
        '-c',
        'true',
      );
      expect(sh.status, `${pod.metadata.name}: ${sh.stdout}${sh.stderr}`).not.toBe(0);
      expect(sh.stderr).toMatch(/no such file or directory/);
    }
  });

  it('pods of a Deployment on every node reach each other, every node and the outside host', async () => {
    await kube.create(
      Deployment,
      spreadProbeDeployment({
        name: 'web',
        namespace: NS,
        replicas: 6,
        image: 'trellis/probe:0.1.0',
        imagePullPolicy: 'Never',
      }),
    );
    const web = await readyPods(NS, 'app=web', 6, '6 Ready web pods');
    expect(new Set(web.map((p) => p.spec?.nodeName))).toEqual(new Set(['node1', 'node2', 'node3']));
    // kubelet reports the address from our CNI result; IPAM holds it for that pod
    const wide = kubectl('get', 'pods', '-n', NS, '-o', 'wide', '--no-headers');
    for (const p of web) {
      expect(wide).toContain(p.status!.podIP!);
      expect(await allocationOf(p.status!.podIP!)).toBe(`${NS}/${p.metadata.name}`);
    }
    for (const p of web) {
      const peers = web.filter((q) => q !== p);
      const targets: { id: string; ip: string; tcp?: boolean }[] = [
        ...peers.map((q) => ({ id: q.metadata.name, ip: q.status!.podIP! })),
        ...state.nodes.map((n) => ({ id: n.name, ip: n.ip, tcp: false })),
        { id: 'outside', ip: state.outside.ip },
      ];
      const out = prober(p.metadata.name, targets);
      const nodeIp = state.nodes.find((n) => n.name === p.spec?.nodeName)!.ip;
      for (const [i, t] of targets.entries()) {
        const o = out[i]!;
        expect(o.icmp?.ok, `${p.metadata.name} -> ${t.id}: ${JSON.stringify(o)}`).toBe(true);
        if (t.tcp === false) continue;
        expect(o.tcp?.ok, `${p.metadata.name} -> ${t.id}: ${JSON.stringify(o)}`).toBe(true);
        // no NAT between pods; masquerade to the outside
        expect(o.tcp?.answer?.sawSource).toBe(t.id === 'outside' ? nodeIp : p.status!.podIP);
      }
    }
    expect(kubectl('logs', '-n', NS, web[0]!.metadata.name)).toContain('probe listening');
    // policy explain reads the same cluster through the kubeconfig only: no policy, so allowed
    const [a, b] = pairAcrossNodes(web)[0]!;
    const ex = cliNoLab([
      'policy',
      'explain',
      '--kubeconfig',
      state.kubeconfig,
      '--from',
      `${NS}/${a.metadata.name}`,
      '--to',
      `${NS}/${b.metadata.name}`,
      '--port',
      '8080/TCP',
      '--json',
    ]);
    expect(ex.status, ex.stderr).toBe(0);
    expect(JSON.parse(ex.stdout)).toMatchObject({ allowed: true, port: 8080, protocol: 'TCP' });
    const missing = cliNoLab([
      'policy',
      'explain',
      '--kubeconfig',
      state.kubeconfig,
      '--from',
      `${NS}/nope`,
      '--to',
      `${NS}/${b.metadata.name}`,
      '--port',
      '8080/TCP',
    ]);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain(`${NS}/nope`);
  });

  it('trellis connectivity-test deploys probe pods through the kubeconfig only, prints the matrix and removes them', () => {
    const res = connectivityTest();
    const report = JSON.parse(res.stdout) as ConnectivityReport;
    expect(report.ok).toBe(true);
    // 3 pods x (2 pods + 3 nodes + outside) + 3 nodes x 3 pods
    expect(report.cells).toHaveLength(27);
    expect(
      sh([kubectlPath(), '--kubeconfig', state.kubeconfig, 'get', 'namespace', 'trellis-connectivity'])
        .status,
    ).not.toBe(0);
  });

  it('a hostPort reaches its pod from outside the node (portmap chained after our plugin)', async () => {
    await kube.create(Builtin.Pod, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'hostport', namespace: NS, labels: { app: 'hostport' } },
      spec: {
        nodeName: 'node2',
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'probe',
            image: 'trellis/probe:0.1.0',
            imagePullPolicy: 'Never',
            args: ['--name', 'hostport'],
            ports: [{ containerPort: 8080, hostPort: 18081 }],
          },
        ],
      },
    });
    const [pod] = await readyPods(NS, 'app=hostport', 1, 'the hostPort pod');
    const node2 = state.nodes.find((n) => n.name === 'node2')!;
    const out = sh([
      'ip',
      'netns',
      'exec',
      state.outside.netns,
      join(REPO, 'node_modules', '.bin', 'node'),
      join(REPO, 'lab', 'prober.ts'),
      JSON.stringify([{ id: 'hp', ip: node2.ip, port: 18081, icmp: false }]),
    ]);
    const [o] = JSON.parse(out.stdout) as ProbeOutcome[];
    expect(o?.tcp?.ok, out.stderr).toBe(true);
    expect(o?.tcp?.answer?.pod).toBe('hostport');
    expect(pod?.status?.podIP).toBeTruthy();
    await kube.delete(Builtin.Pod, 'hostport', NS);
  });

  it('deleting a pod frees its IP, as trellis ipam show sees through the kubeconfig only', async () => {
    const [victim] = await readyPods(NS, 'app=web', 6, 'web pods');
    const ip = victim!.status!.podIP!;
    expect(await allocationOf(ip)).toBe(`${NS}/${victim!.metadata.name}`);
    const holderOf = (): string | undefined => {
      const res = cliNoLab(['ipam', 'show', '--kubeconfig', state.kubeconfig, '--json']);
      expect(res.status, res.stderr).toBe(0);
      const view = JSON.parse(res.stdout) as IpamView;
      const a = view.blocks.flatMap((b) => b.allocations).find((x) => x.ip === ip);
      return a && `${a.namespace}/${a.pod}`;
    };
    expect(holderOf()).toBe(`${NS}/${victim!.metadata.name}`);
    kubectl('delete', 'pod', '-n', NS, victim!.metadata.name, '--wait=true');
    await eventually(async () => (await allocationOf(ip)) === undefined, `${ip} released`, 30_000);
    expect(holderOf()).toBeUndefined();
    await readyPods(NS, 'app=web', 6, 'the Deployment back at 6 Ready pods');
  });

  it('an agent killed (pod deleted, then process SIGKILLed) comes back; running pods lose no packet; pods created meanwhile start', async () => {
    const web = await readyPods(NS, 'app=web', 6, 'web pods');
    const pairs = pairAcrossNodes(web);
    const pings = pairs.map(([a, b]) => pingFor(a.metadata.name, b.status!.podIP!, 25));

    // 1. kubectl delete pod: the DaemonSet makes a new one
    const old = (await agentPodOn('node1'))!;
    kubectl('delete', 'pod', '-n', RELEASE_NAMESPACE, old.metadata.name, '--wait=false');
    const during1 = podOn('during-delete', 'node1');
    await kube.create(Builtin.Pod, during1);
    const back = await eventually(
      async () => {
        const p = await agentPodOn('node1');
        return p && p.metadata.name !== old.metadata.name && isReady(p) ? p : undefined;
      },
      'a new agent pod on node1',
      90_000,
    );
    expect(back.metadata.name).not.toBe(old.metadata.name);

    // 2. SIGKILL of the agent process: kubelet restarts the container
    const node2 = state.nodes.find((n) => n.name === 'node2')!;
    const before = (await agentPodOn('node2'))!;
    const restarts = before.status?.containerStatuses?.[0]?.restartCount ?? 0;
    const pids = agentPids(node2.netns);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await kube.create(Builtin.Pod, podOn('during-kill', 'node2'));
    await eventually(
      async () => {
        const p = await agentPodOn('node2');
        return p && (p.status?.containerStatuses?.[0]?.restartCount ?? 0) > restarts && isReady(p);
      },
      'the agent container on node2 restarted and Ready',
      90_000,
    );

    // pods created while the agent was away come up once it is back
    const started = await readyPods(NS, 'app=during', 2, 'pods created during the agent outages', 120_000);
    for (const p of started) expect(await allocationOf(p.status!.podIP!)).toBe(`${NS}/${p.metadata.name}`);

    for (const r of await Promise.all(pings)) {
      expect(r.sent, r.text).toBeGreaterThan(50);
      expect(r.received, r.text).toBe(r.sent);
    }
    kubectl('delete', 'pod', '-n', NS, '-l', 'app=during', '--wait=true');
  });

  it('helm upgrade to a new agent image rolls node by node with zero failed pings, and new pods keep starting', async () => {
    const build = sh(
      [
        join(REPO, 'node_modules', '.bin', 'node'),
        join(REPO, 'images', 'build.ts'),
        '--only',
        'agent',
        '--tag',
        UPGRADE_TAG,
        '--label',
        'dev.trellis.e2e=upgrade',
        '--out',
        UPGRADE_DIR,
      ],
      300_000,
    );
    expect(build.status, build.stderr).toBe(0);
    importImage(state, join(UPGRADE_DIR, 'agent.oci.tar'));
    const web = await readyPods(NS, 'app=web', 6, 'web pods');
    const pings = pairAcrossNodes(web).map(([a, b]) => pingFor(a.metadata.name, b.status!.podIP!, 45));

    const up = sh(helmArgs(state, 'upgrade', ['--set', `agent.image.tag=${UPGRADE_TAG}`]));
    expect(up.status, up.stderr).toBe(0);
    // sample the agents while they roll: never more than one node without a ready agent
    let worst = 0;
    let done = false;
    const deadline = Date.now() + 120_000;
    let scaled = false;
    while (!done && Date.now() < deadline) {
      const agents = await pods(RELEASE_NAMESPACE, 'app.kubernetes.io/name=trellis-agent');
      const readyNodes = new Set(agents.filter(isReady).map((p) => p.spec?.nodeName));
      worst = Math.max(worst, state.nodes.filter((n) => !readyNodes.has(n.name)).length);
      const upgraded = agents.filter(
        (p) => isReady(p) && p.spec?.containers?.[0]?.image?.endsWith(`:${UPGRADE_TAG}`),
      );
      if (!scaled && upgraded.length > 0) {
        // new pods keep starting during the rollout
        await kube.mergePatch(Deployment, 'web', { spec: { replicas: 9 } }, NS);
        scaled = true;
      }
      done = upgraded.length === 3 && agents.length === 3;
      await sleep(250);
    }
    expect(done, 'every agent pod runs the new image').toBe(true);
    expect(worst).toBeLessThanOrEqual(1);
    expect(scaled).toBe(true);
    await readyPods(NS, 'app=web', 9, '9 Ready web pods after scaling up during the rollout');
    for (const r of await Promise.all(pings)) {
      expect(r.sent, r.text).toBeGreaterThan(100);
      expect(r.received, r.text).toBe(r.sent);
    }
    const st = JSON.parse(
      cliNoLab(['status', '--kubeconfig', state.kubeconfig, '--json']).stdout,
    ) as StatusReport;
    expect(st.agents[0]?.image).toContain(UPGRADE_TAG);
    expect(st.ok).toBe(true);
  });

  it('helm uninstall leaves nothing behind on the nodes but the CRDs, and a reinstall works', async () => {
    kubectl('delete', 'deployment', '-n', NS, 'web', '--wait=true');
    await eventually(async () => (await pods(NS)).length === 0, 'web pods gone', 60_000);
    const un = sh([
      helmBin(),
      'uninstall',
      RELEASE,
      '--kubeconfig',
      state.kubeconfig,
      '--namespace',
      RELEASE_NAMESPACE,
      '--wait',
    ]);
    expect(un.status, un.stderr).toBe(0);
    await eventually(
      async () => {
        const [cns, agents, ops, ds] = await Promise.all([
          kube.listAll(ClusterNetworkResource),
          pods(RELEASE_NAMESPACE),
          kube.listAll(Deployment, RELEASE_NAMESPACE),
          kube.listAll(Builtin.DaemonSet, RELEASE_NAMESPACE),
        ]);
        return cns.items.length + agents.length + ops.items.length + ds.items.length === 0;
      },
      'ClusterNetwork, operator, DaemonSet and agent pods gone',
      120_000,
      500,
    );
    expect((await kube.listAll(NodeNetworkStatusResource)).items.map((o) => o.metadata.name)).toEqual([]);
    // IPBlocks are IPAM state and stay (a reinstall adopts them), but no address is held any more
    const held = (await kube.listAll<IPBlock>(IPBlockResource)).items.flatMap((b) =>
      Object.keys(b.spec?.allocations ?? {}),
    );
    expect(held).toEqual([]);
    // the agents saw their ClusterNetwork go and uninstalled themselves from each node
    for (const n of state.nodes) {
      expect(readdirSync(nodeFile(n.name, 'etc/cni/net.d'))).toEqual([]);
      expect(existsSync(nodeFile(n.name, 'opt/cni/bin/trellis'))).toBe(false);
      expect(readdirSync(nodeFile(n.name, 'var/lib/trellis'))).toEqual([]);
      expect(sh(['ip', '-n', n.netns, '-o', 'link', 'show']).stdout).not.toContain('trl.vxlan');
      // (trellis-lab-svc is the lab's kube-proxy stand-in, not the agent's)
      expect(sh(['ip', 'netns', 'exec', n.netns, 'nft', 'list', 'tables']).stdout).not.toMatch(/ trellis_/);
    }
    const crds = kubectl('get', 'crd', '-o', 'name');
    expect(crds).toContain('clusternetworks.network.trellis.dev');

    const again = sh(helmArgs(state, 'install'));
    expect(again.status, again.stderr).toBe(0);
    await waitClusterNetworkReady(kube, 180_000);
    // kubelets report the node Ready again once the new agent's conflist is there
    await waitNodesReady(kube, state, 60_000);
    connectivityTest();
  });
});

function podOn(name: string, node: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: 'during' } },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'probe',
          image: 'trellis/probe:0.1.0',
          imagePullPolicy: 'Never',
          args: ['--name', name],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        },
      ],
    },
  };
}
