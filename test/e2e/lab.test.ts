// End to end in the lab, for real: a control plane, 3 netns nodes on an underlay, our operator,
// agents started from the DaemonSet it rendered, our CNI plugin chained with the reference portmap,
// and pods wired by the simulated kubelet. Each backend gets one lab (prefix `tle`, underlay
// 198.18.8.0/24, its own state dir) so it can run beside a developer's lab, and is torn down after.
import { spawnSync } from 'node:child_process';
import { startPingLoop } from '../support/ping-loop.ts';
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import { ClusterNetworkResource, IPBlockResource } from '../../src/api/group.ts';
import type { IPBlock } from '../../src/api/ipam.ts';
import { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { killAgent, startAgent, agentPid, waitAgentsReady } from '../../lab/agents.ts';
import { loadFirstConfList } from '../../src/cni/runner-config.ts';
import { connectivityTest, renderMatrix } from '../../lab/connectivity.ts';
import { down } from '../../lab/down.ts';
import { createPod, deletePod, type PodView } from '../../lab/podcmd.ts';
import { readSandboxes, type Pod } from '../../lab/pods.ts';
import { tcpProbe } from '../../lab/prober.ts';
import { linkExists, netnsExists, run } from '../../lab/sh.ts';
import { REPO, killRecordedProcess, type BackendMode, type LabState } from '../../lab/state.ts';
import { startKubelet, up } from '../../lab/up.ts';
import { probeFrom } from '../support/probe.ts';
import { eventually } from '../support/kube.ts';
import { kubectlPath } from '../../src/controlplane/binaries.ts';
import { startComponent, stopComponent, waitApiServerReady } from '../../src/controlplane/controlplane.ts';

const KUBECTL = kubectlPath();

const PREFIX = 'tle';
const SUBNET = '198.18.8';
const STATE_DIR = join(REPO, '.cache', 'lab-e2e');
const PODS_PER_NODE = 3;
const STAND_IN = process.env.TRELLIS_E2E_STANDIN === '1'; // harness development only

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(join(REPO, 'bin', 'trellis'), args, {
    encoding: 'utf8',
    env: { ...process.env, TRELLIS_LAB_DIR: STATE_DIR },
    timeout: 120_000,
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

async function allocationOf(
  kube: KubeClient,
  ip: string,
): Promise<{ pod: string; namespace: string } | undefined> {
  const blocks = await kube.listAll<IPBlock>(IPBlockResource);
  for (const b of blocks.items) {
    const a = b.spec?.allocations?.[ip];
    if (a) return { pod: a.pod, namespace: a.namespace };
  }
  return undefined;
}

// host-gw first: the vxlan lab's logs (roll, uninstall) are the ones left in .cache/lab-e2e
describe.each(['host-gw', 'vxlan'] as BackendMode[])('lab with the %s backend', (backend) => {
  let state: LabState;
  let kube: KubeClient;
  const pods: PodView[] = [];
  let cnAfterUp: ClusterNetwork | undefined;

  beforeAll(async () => {
    await down({ stateDir: STATE_DIR, prefix: PREFIX }); // leftovers of a crashed run
    state = await up({
      nodes: 3,
      backend,
      stateDir: STATE_DIR,
      prefix: PREFIX,
      subnet: SUBNET,
      standIn: STAND_IN,
    });
    kube = await KubeClient.fromKubeconfig(state.kubeconfig);
    cnAfterUp = await kube.getOrUndefined<ClusterNetwork>(ClusterNetworkResource, 'default');
    const created = await Promise.all(
      state.nodes.flatMap((n) =>
        Array.from({ length: PODS_PER_NODE }, (_, i) =>
          createPod(kube, state, {
            name: `p-${n.name}-${i}`,
            namespace: i === 2 ? 'other' : 'default',
            node: n.name,
          }),
        ),
      ),
    );
    pods.push(...created);
  });

  afterAll(async () => {
    await kube?.close();
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
    // nothing of the lab survives `down`: namespaces, the bridge, processes
    expect(
      run(['ip', 'netns', 'list'])
        .split('\n')
        .filter((l) => l.startsWith(`${PREFIX}-`)),
    ).toEqual([]);
    expect(linkExists(`${PREFIX}-br0`)).toBe(false);
    expect(processesMentioning(STATE_DIR)).toEqual([]);
  });

  it('returns from lab up only once the ClusterNetwork is Ready for its generation', (ctx) => {
    ctx.skip(STAND_IN, 'stand-in mode runs no operator');
    const ready = cnAfterUp?.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready, JSON.stringify(cnAfterUp?.status)).toMatchObject({ status: 'True' });
    expect(cnAfterUp?.status?.observedGeneration).toBe(cnAfterUp?.metadata.generation);
  });

  it('is visible to kubectl, trellis lab status, lab exec and trellis ipam show', () => {
    const k = spawnSync(
      KUBECTL,
      ['--kubeconfig', state.kubeconfig, 'get', 'clusternetwork', 'default', '-o', 'json'],
      { encoding: 'utf8' },
    );
    {
      expect(k.error, `kubectl (${KUBECTL}) did not run; \`make setup\` builds it`).toBeUndefined();
      expect(k.status, k.stderr).toBe(0);
      const cn = JSON.parse(k.stdout) as {
        spec: { backend: { mode: string } };
        status?: { conditions?: { type: string; status: string }[] };
      };
      expect(cn.spec.backend.mode).toBe(backend);
      if (!STAND_IN) {
        // status is asynchronous: wait for Ready the way a user (or a GitOps tool) would
        const w = spawnSync(
          KUBECTL,
          [
            '--kubeconfig',
            state.kubeconfig,
            'wait',
            '--for=condition=Ready',
            'clusternetwork/default',
            '--timeout=60s',
          ],
          { encoding: 'utf8' },
        );
        expect(w.status, `${w.stderr}\nconditions: ${JSON.stringify(cn.status?.conditions)}`).toBe(0);
      }
    }

    const st = cli(['lab', 'status', '--json']);
    expect(st.status, st.stderr).toBe(0);
    const status = JSON.parse(st.stdout) as {
      nodes: { agentPid?: number; kubeletPid?: number }[];
      pods: { ip: string }[];
    };
    for (const n of status.nodes) {
      expect(n.kubeletPid).toBeGreaterThan(0);
      if (!STAND_IN) expect(n.agentPid).toBeGreaterThan(0);
    }
    for (const p of pods) expect(status.pods.map((x) => x.ip)).toContain(p.ip);

    const ex = cli([
      'lab',
      'exec',
      pods[0].name,
      '--namespace',
      pods[0].namespace,
      '--',
      'ip',
      '-4',
      '-o',
      'addr',
      'show',
      'dev',
      'eth0',
    ]);
    expect(ex.status, ex.stderr).toBe(0);
    expect(ex.stdout).toContain(`${pods[0].ip}/`);
  });

  it('attributes every pod address in trellis ipam show', (ctx) => {
    ctx.skip(STAND_IN, 'stand-in mode has no Trellis IPAM to show');
    const ipam = cli(['ipam', 'show', '--json']);
    expect(ipam.status, ipam.stderr).toBe(0);
    const held = new Map(
      (
        JSON.parse(ipam.stdout) as {
          blocks: { allocations: { ip: string; pod: string; namespace: string; node: string }[] }[];
        }
      ).blocks
        .flatMap((b) => b.allocations)
        .map((a) => [a.ip, a]),
    );
    for (const p of pods)
      expect(held.get(p.ip)).toMatchObject({ pod: p.name, namespace: p.namespace, node: p.node });
  });

  it('gives every pod a distinct IP from the pool', () => {
    const ips = pods.map((p) => p.ip);
    expect(new Set(ips).size).toBe(pods.length);
    if (!STAND_IN) for (const ip of ips) expect(ip).toMatch(/^10\.244\./);
  });

  it('programs the backend it was asked for', (ctx) => {
    ctx.skip(STAND_IN, 'stand-in mode programs no Trellis backend');
    const [n1, n2] = state.nodes;
    const remote = pods.find((p) => p.node === n2.name)!;
    const route = run(['ip', '-n', n1.netns, 'route', 'get', remote.ip]);
    const vxlanLinks = run(['ip', '-n', n1.netns, '-o', 'link', 'show', 'type', 'vxlan']).trim();
    if (backend === 'vxlan') {
      expect(vxlanLinks, 'a vxlan device on the node').not.toBe('');
      expect(route, 'remote pods are reached through the vxlan device').not.toMatch(/ dev eth0 /);
    } else {
      expect(vxlanLinks, 'no vxlan device with host-gw').toBe('');
      expect(route, 'remote pods are reached via the remote node address').toContain(`via ${n2.ip} dev eth0`);
    }
  });

  it('passes CNI CHECK through the chain for a running pod', () => {
    const p = pods[0];
    const res = cli(['lab', 'pod', 'check', p.name, '--namespace', p.namespace, '--json']);
    expect(res.status, res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as { plugins: string[] }).plugins).toEqual(
      STAND_IN ? ['bridge', 'portmap'] : ['trellis', 'portmap'],
    );
  });

  it('connects every pod to every pod, node and the outside host with the right source addresses', async () => {
    const report = await connectivityTest(kube, state);
    const matrix = renderMatrix(report);
    expect(report.failures, matrix).toEqual([]);
    const podIds = new Set(pods.map((p) => `${p.namespace}/${p.name}`));
    const podToPod = report.cells.filter((c) => podIds.has(c.from) && podIds.has(c.to));
    expect(podToPod.length).toBe(pods.length * (pods.length - 1));
    // the receiver saw the sender's own pod IP (no NAT between pods)
    const ipOf = new Map(pods.map((p) => [`${p.namespace}/${p.name}`, p.ip]));
    for (const c of podToPod) expect(c.sawSource, `${c.from} -> ${c.to}`).toBe(ipOf.get(c.from));
    // egress to the outside host is masqueraded to the pod's node IP
    const nodeIp = new Map(state.nodes.map((n) => [n.name, n.ip]));
    for (const p of pods) {
      const c = report.cells.find((x) => x.from === `${p.namespace}/${p.name}` && x.to === 'outside');
      expect(c?.sawSource, `${p.name} -> outside`).toBe(nodeIp.get(p.node));
    }
  });

  it('prints the matrix and exits 0 from the CLI', () => {
    const res = cli(['connectivity-test', '--json']);
    expect(res.status, res.stderr + res.stdout.slice(0, 2000)).toBe(0);
    const report = JSON.parse(res.stdout) as { ok: boolean; cells: unknown[] };
    expect(report.ok).toBe(true);
    expect(report.cells.length).toBeGreaterThan(100);
  });

  it('publishes a hostPort on the node IP through the chained portmap plugin', async () => {
    const node = state.nodes[1];
    const pod = await createPod(kube, state, {
      name: 'hostport',
      namespace: 'default',
      node: node.name,
      hostPort: 18080,
    });
    // from the root netns, over the underlay, as a client outside the cluster would
    const got = await eventually(async () => {
      const r = await tcpProbe(node.ip, 18080);
      return r.ok ? r.answer : undefined;
    }, `${node.ip}:18080 to reach pod hostport`);
    expect(got.pod).toBe('default/hostport');
    await deletePod(kube, state, pod.name, pod.namespace);
  });

  it('removes the interface and routes of a deleted pod and frees its IP', async () => {
    const node = state.nodes[0];
    const pod = await createPod(kube, state, { name: 'short-lived', namespace: 'default', node: node.name });
    const rec = readSandboxes(state, node).find((r) => r.name === 'short-lived');
    const hostIfs = (rec?.result?.interfaces ?? []).filter((i) => !i.sandbox).map((i) => i.name);
    if (!STAND_IN) {
      expect(hostIfs.length, 'the CNI result names the host-side interface').toBeGreaterThan(0);
      for (const name of hostIfs) expect(linkExists(name, node.netns)).toBe(true);
      expect(await allocationOf(kube, pod.ip)).toEqual({ pod: 'short-lived', namespace: 'default' });
    }
    if (!STAND_IN) expect(run(['ip', '-n', node.netns, 'route', 'show'])).toContain(pod.ip);

    await deletePod(kube, state, pod.name, pod.namespace);

    expect(netnsExists(pod.netns)).toBe(false);
    if (!STAND_IN)
      for (const name of hostIfs) expect(linkExists(name, node.netns), `host interface ${name}`).toBe(false);
    const routesAfter = run(['ip', '-n', node.netns, 'route', 'show']);
    expect(
      routesAfter.split('\n').filter((l) => l.split(' ')[0] === pod.ip || l.split(' ')[0] === `${pod.ip}/32`),
    ).toEqual([]);
    if (!STAND_IN) {
      await eventually(
        async () => (await allocationOf(kube, pod.ip)) === undefined,
        `IP ${pod.ip} to be released in its IPBlock`,
      );
    }
  });

  it("keeps running pods' traffic flowing while an agent is killed and restarted, and new pods work after", async () => {
    const node = state.nodes[0];
    const a = pods.find((p) => p.node === node.name)!;
    const b = pods.find((p) => p.node === state.nodes[1].name)!;
    // a ping loop from a pod on the agent's node to a pod on another node, running throughout
    const ping = startPingLoop(a.netns, b.ip, 0.2);
    const replies = ping.replies;
    let gaps: { last: number; missing: number[] };
    try {
      await eventually(async () => replies() >= 5, 'the ping loop to run');
      if (!STAND_IN) expect(killAgent(state, node)).toBe(true);
      expect(agentPid(state, node)).toBeUndefined();
      const atKill = replies();
      await eventually(async () => replies() >= atKill + 10, 'ping replies while the agent is down');
      // TCP too, while the agent is down
      const tcp = await runProbe(a.netns, b.ip);
      expect(tcp.ok, tcp.error).toBe(true);
      expect(tcp.answer?.sawSource).toBe(a.ip);

      // a pod created while its node's agent is down fails ADD with a clear event, and starts once it is back
      await createPod(
        kube,
        state,
        { name: 'during-outage', namespace: 'default', node: node.name },
        { wait: false },
      );
      if (!STAND_IN) {
        const ev = await eventually(
          async () =>
            (
              await kube.list<
                KubeObject & { reason?: string; message?: string; involvedObject?: { name: string } }
              >(Builtin.Event, 'default')
            ).items.find(
              (e) => e.involvedObject?.name === 'during-outage' && e.reason === 'FailedCreatePodSandBox',
            ),
          'a FailedCreatePodSandBox event while the agent is down',
        );
        expect(ev.message).toMatch(/agent/i);
        await startAgent(kube, state, node);
      }
      const recovered = await eventually(
        async () => {
          const p = await kube.get<Pod>(Builtin.Pod, 'during-outage', 'default');
          return p.status?.podIP;
        },
        'the pod created during the outage to get an IP',
        60_000,
      );
      expect(recovered).toMatch(/^10\.244\./);
      const fresh = await createPod(kube, state, {
        name: 'after-restart',
        namespace: 'default',
        node: node.name,
      });
      const atRestart = replies();
      await eventually(async () => replies() >= atRestart + 10, 'ping replies after the agent restarted');
      const r1 = await runProbe(fresh.netns, b.ip);
      expect(r1.ok, r1.error).toBe(true);
      expect(r1.answer?.sawSource).toBe(fresh.ip);
    } finally {
      gaps = await ping.stop();
    }
    // every echo up to the last answered one got its reply: no gap while the agent was down or restarting
    expect(gaps.last).toBeGreaterThan(25);
    expect(gaps.missing, `echo requests without a reply across the agent restart`).toEqual([]);
  });

  it('answers user mistakes with what to fix', () => {
    const again = cli(['lab', 'up', '--nodes', '3', '--backend', backend]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already up.*--force/);
    const unknownNode = cli(['lab', 'pod', 'create', 'x', '--node', 'node9']);
    expect(unknownNode.stderr).toMatch(/unknown node "node9"; the lab has node1, node2, node3/);
    const missing = cli(['lab', 'pod', 'delete', 'no-such-pod']);
    expect(missing.stderr).toMatch(/pod default\/no-such-pod not found/);
    const bad = cli(['lab', 'pod', 'create', 'x', '--nod', 'node1', '--json']);
    expect(JSON.parse(bad.stdout)).toEqual({ error: expect.stringMatching(/unknown flag --nod/) });
  });

  it('finishes a deletion that happened while the kubelet was down, and keeps the other pods', async () => {
    const node = state.nodes[2];
    const [victim, survivor] = pods.filter((p) => p.node === node.name);
    expect(killRecordedProcess(state.stateDir, `kubelet-${node.name}`)).toBe(true);
    await kube.delete(Builtin.Pod, victim.name, victim.namespace);
    const terminating = await kube.get<Pod>(Builtin.Pod, victim.name, victim.namespace);
    expect(terminating.metadata.deletionTimestamp, 'a bound pod waits for its kubelet').toBeDefined();
    startKubelet(state, node);
    await eventually(
      async () => (await kube.getOrUndefined(Builtin.Pod, victim.name, victim.namespace)) === undefined,
      `pod ${victim.name} to be removed by the restarted kubelet`,
    );
    expect(netnsExists(victim.netns)).toBe(false);
    if (!STAND_IN) {
      await eventually(
        async () => (await allocationOf(kube, victim.ip)) === undefined,
        `IP ${victim.ip} released`,
      );
    }
    const r = await runProbe(pods.find((p) => p.node !== node.name)!.netns, survivor.ip);
    expect(r.ok, r.error).toBe(true);
    pods.splice(pods.indexOf(victim), 1);
  });

  it('recovers from a 30 s API server outage and an etcd restart while pods come and go: no traffic, address or pod lost', async (ctx) => {
    ctx.skip(STAND_IN, 'stand-in mode runs no agents or operator to recover');
    ctx.skip(
      backend !== 'vxlan',
      'control-plane faults do not depend on the backend: tested once, with vxlan',
    );
    const cpDir = join(state.stateDir, 'controlplane');
    const a = pods.find((p) => p.node === state.nodes[0].name)!;
    const b = pods.find((p) => p.node === state.nodes[1].name)!;
    const ping = startPingLoop(a.netns, b.ip, 0.2);
    let gaps: { last: number; missing: number[] };
    // churn: a pod created every 500 ms round the nodes, and the oldest deleted once four of them are
    // up; calls the API refuses while it is down are counted, not retried (a user would see them fail)
    let stop = false;
    const churn = { created: 0, deleted: 0, refused: 0 };
    const alive: string[] = [];
    const churner = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await createPod(
            kube,
            state,
            { name: `fault-${i}`, namespace: 'default', node: state.nodes[i % 3].name },
            { wait: false },
          );
          churn.created++;
          alive.push(`fault-${i}`);
        } catch {
          churn.refused++;
        }
        if (alive.length > 4) {
          try {
            await kube.delete(Builtin.Pod, alive[0]!, 'default');
            alive.shift();
            churn.deleted++;
          } catch {
            churn.refused++;
          }
        }
        await sleep(500);
      }
    })();
    /** Seconds until a pod created now on every node runs and the operator repairs a deleted ConfigMap. */
    const recovered = async (tag: string, from: number): Promise<number> => {
      await Promise.all(
        state.nodes.map((n) =>
          createPod(
            kube,
            state,
            { name: `${tag}-${n.name}`, namespace: 'default', node: n.name },
            { timeoutMs: 120_000 },
          ),
        ),
      );
      await kube.delete(Builtin.ConfigMap, 'trellis-cni-config', 'trellis-system');
      await eventually(
        async () =>
          (await kube.getOrUndefined(Builtin.ConfigMap, 'trellis-cni-config', 'trellis-system')) !==
          undefined,
        'the operator to repair the deleted ConfigMap (its watches are back)',
        120_000,
      );
      await waitAgentsReady(kube, state, 120_000);
      return (Date.now() - from) / 1000;
    };
    let apiRecovery = 0;
    let etcdRecovery = 0;
    try {
      await eventually(async () => churn.created >= 4, 'the churn to run');
      await stopComponent(cpDir, 'kube-apiserver');
      await sleep(30_000);
      startComponent(cpDir, 'kube-apiserver');
      const apiBack = Date.now();
      await waitApiServerReady(cpDir);
      apiRecovery = await recovered('after-api', apiBack);

      await stopComponent(cpDir, 'etcd');
      startComponent(cpDir, 'etcd');
      const etcdBack = Date.now();
      await waitApiServerReady(cpDir);
      etcdRecovery = await recovered('after-etcd', etcdBack);
    } finally {
      stop = true;
      await churner;
      gaps = await ping.stop();
    }
    // running pods lost no traffic through either fault
    expect(gaps.last).toBeGreaterThan(150);
    expect(gaps.missing, 'echo requests without a reply during the faults').toEqual([]);
    // no address lost or duplicated: every live pod runs with an address recorded for it, every
    // recorded address belongs to a live pod (deletions made before or after the outage released theirs)
    await eventually(
      async () => {
        const live = (await kube.listAll<Pod>(Builtin.Pod)).items;
        const ips = live.map((p) => p.status?.podIP);
        if (ips.some((ip) => !ip)) return false;
        const held = new Map<string, string>();
        for (const blk of (await kube.listAll<IPBlock>(IPBlockResource)).items)
          for (const [ip, al] of Object.entries(blk.spec?.allocations ?? {}))
            held.set(ip, `${al.namespace}/${al.pod}`);
        const want = new Map(
          live.map((p) => [p.status!.podIP!, `${p.metadata.namespace}/${p.metadata.name}`]),
        );
        return (
          new Set(ips).size === ips.length &&
          JSON.stringify([...held].sort()) === JSON.stringify([...want].sort())
        );
      },
      'every live pod to hold exactly its recorded address, and nothing else to be held',
      120_000,
    );
    console.log(
      `faults: API server down 30 s, recovered ${apiRecovery.toFixed(1)} s after it came back; etcd restart, recovered in ` +
        `${etcdRecovery.toFixed(1)} s (a new pod running on every node, operator drift repair, every agent Ready); ` +
        `churn ${churn.created} pods created, ${churn.deleted} deleted, ${churn.refused} calls refused during the outage; ` +
        `${gaps.last} pings, none lost`,
    );
    for (const n of state.nodes)
      for (const tag of ['after-api', 'after-etcd'])
        await deletePod(kube, state, `${tag}-${n.name}`, 'default');
    const rest = (await kube.listAll<Pod>(Builtin.Pod, 'default')).items.filter((p) =>
      p.metadata.name.startsWith('fault-'),
    );
    await Promise.all(rest.map((p) => deletePod(kube, state, p.metadata.name, 'default')));
  });

  it('rolls the agents while pods are created continuously: the conflist never goes, every pod starts', async (ctx) => {
    ctx.skip(STAND_IN, 'stand-in mode runs no agents to roll');
    ctx.skip(backend !== 'vxlan', 'the roll does not depend on the backend: tested once, with vxlan');
    const before = state.nodes.map((n) => agentPid(state, n));
    const confDirs = state.nodes.map((n) => join(n.root, 'etc', 'cni', 'net.d'));
    const gaps: string[] = [];
    let rolled = false;
    // the runtime's view: is there a CNI config on the node at every instant of the roll?
    const watcher = (async () => {
      while (!rolled) {
        for (const [i, dir] of confDirs.entries())
          if (!loadFirstConfList(dir)) gaps.push(`${state.nodes[i].name} at ${new Date().toISOString()}`);
        await sleep(20);
      }
    })();
    const churn: PodView[] = [];
    const creator = (async () => {
      for (let i = 0; !rolled; i++) {
        const node = state.nodes[i % state.nodes.length];
        churn.push(
          await createPod(
            kube,
            state,
            { name: `roll-${i}`, namespace: 'default', node: node.name },
            { wait: false },
          ),
        );
        await sleep(150);
      }
    })();
    try {
      await kube.mergePatch(ClusterNetworkResource, 'default', { spec: { agent: { logLevel: 'debug' } } });
      await eventually(
        async () => state.nodes.every((n, i) => agentPid(state, n) && agentPid(state, n) !== before[i]),
        'every agent to be restarted with the new template',
        60_000,
      );
      await waitAgentsReady(kube, state, 60_000, state.nodes.length - 1);
    } finally {
      rolled = true;
      await Promise.all([watcher, creator]);
    }
    expect(gaps, 'moments a node had no CNI config during the roll').toEqual([]);
    // a roll takes about 2 s on an idle machine: a few pods, not a fixed count, land inside it
    expect(churn.length, 'pods created while the agents rolled').toBeGreaterThanOrEqual(3);
    // every pod created during the roll gets its address (a runtime retries an ADD answered 11)
    const started = await Promise.all(
      churn.map((p) =>
        eventually(
          async () => (await kube.get<Pod>(Builtin.Pod, p.name, p.namespace)).status?.podIP,
          `pod ${p.name} created during the roll to get an IP`,
          60_000,
        ),
      ),
    );
    expect(new Set(started).size).toBe(churn.length);
    const retried = (
      await kube.list<KubeObject & { reason?: string; involvedObject?: { name: string } }>(
        Builtin.Event,
        'default',
      )
    ).items.filter(
      (e) => e.reason === 'FailedCreatePodSandBox' && e.involvedObject?.name.startsWith('roll-'),
    );
    console.log(
      `agent roll: ${churn.length} pods created during it, ${retried.length} ADDs retried (agent socket down between old and new agent), 0 moments without CNI config`,
    );
    await Promise.all(churn.map((p) => deletePod(kube, state, p.name, p.namespace)));
    const report = await connectivityTest(kube, state);
    expect(report.failures, renderMatrix(report)).toEqual([]);
  });

  it('removes the CNI config only on uninstall: ClusterNetwork deleted, agents stopped, no conflist left', async (ctx) => {
    ctx.skip(STAND_IN, 'stand-in mode runs no agents');
    // the last test of this lab, since it uninstalls it; once is enough
    ctx.skip(backend !== 'vxlan', 'uninstall does not depend on the backend: tested once, with vxlan');
    await kube.delete(ClusterNetworkResource, 'default');
    await eventually(
      async () => state.nodes.every((n) => agentPid(state, n) === undefined),
      'every agent to be stopped once the operator deleted the DaemonSet',
      60_000,
    );
    for (const n of state.nodes)
      expect(
        loadFirstConfList(join(n.root, 'etc', 'cni', 'net.d')),
        `conflist left on ${n.name}`,
      ).toBeUndefined();
  });
});

/** One TCP probe from inside a netns (the prober program), as a pod would connect. */
async function runProbe(
  netns: string,
  ip: string,
): Promise<{ ok: boolean; answer?: { pod: string; sawSource: string }; error?: string }> {
  return probeFrom(netns, [{ id: 't', ip, icmp: false }])[0]?.tcp ?? { ok: false, error: 'no outcome' };
}

/** Processes whose command line mentions a path (what `lab down` must leave none of). */
function processesMentioning(path: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((f) => /^\d+$/.test(f))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(path) && Number(pid) !== process.pid) out.push(`${pid}: ${cmd.slice(0, 200)}`);
    } catch {
      // exited while we looked
    }
  }
  return out;
}
