// Extra networks end to end in the lab: two nodes, each with a second underlay NIC (eth1) and a
// spare veth (hdev0) on the lab's data bridge; ClusterNetwork attachments of type macvlan, bridge and
// host-device rendered into NADs by the operator; pods asking for them with the NPWG annotation
// (both forms); the agent delegating to Debian's reference plugins with our IPAM. Real packets
// between pods on every network, network-status checked against the interfaces in each pod, the
// bad requests of the issue answered with a CNI error and a Pod Event leaving nothing behind, and
// DEL after an agent SIGKILL.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNetworkResource } from '../../src/api/group.ts';
import {
  addNetworkList,
  CniInvokeError,
  delNetworkList,
  statusNetworkList,
  type NetworkConfigList,
  type RunnerOptions,
  type RuntimeConf,
} from '../../src/cni/runner.ts';
import { loadFirstConfList } from '../../src/cni/runner-config.ts';
import { ipamView } from '../../src/ipam/show.ts';
import { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import {
  MultiNetworkPolicyResource,
  NETWORKS_ANNOTATION,
  NETWORK_STATUS_ANNOTATION,
  multiNetworkPolicy,
  parseNetworkStatus,
} from '../../src/multinet/index.ts';
import { agentLog, killAgent, startAgent } from '../../lab/agents.ts';
import { DATA_BRIDGE, HOST_DEVICE } from '../../lab/databridge.ts';
import { down } from '../../lab/down.ts';
import { createPod, deletePod, ensureNamespace, type PodView } from '../../lab/podcmd.ts';
import type { Pod } from '../../lab/pods.ts';
import { inNetns, run, tryRun } from '../../lab/sh.ts';
import { NODE_BIN, REPO, type LabState } from '../../lab/state.ts';
import { up } from '../../lab/up.ts';
import { eventually } from '../support/kube.ts';

const PREFIX = 'tmn';
const SUBNET = '198.18.12';
const STATE_DIR = join(REPO, '.cache', 'lab-e2e-multinet');

const ATTACHMENTS = [
  {
    name: 'mv',
    type: 'macvlan',
    master: 'eth1',
    pool: {
      cidr: '10.77.1.0/24',
      gateway: '10.77.1.1',
      rangeStart: '10.77.1.10',
      rangeEnd: '10.77.1.99',
      // pods of `default` may pick their address (the annotation's `ips`)
      staticAddresses: { namespaces: ['default'] },
    },
  },
  // This kernel has no 8021q (vlan), so the third network is a bridge attachment on each node's
  // br-data, whose port eth2 is on the lab's data bridge.
  { name: 'br', type: 'bridge', bridge: DATA_BRIDGE, pool: { cidr: '10.77.2.0/24' } },
  { name: 'hd', type: 'host-device', master: HOST_DEVICE, pool: { cidr: '10.77.3.0/24' } },
  // One usable address: the second pod asking for it finds the pool exhausted.
  {
    name: 'tiny',
    type: 'macvlan',
    master: 'eth1',
    pool: {
      cidr: '10.77.4.0/24',
      rangeStart: '10.77.4.10',
      rangeEnd: '10.77.4.10',
      staticAddresses: { namespaces: ['default'] },
    },
  },
];

interface IfAddr {
  ifname: string;
  address: string;
  addr_info: { local: string; family: string }[];
}

function podLinks(netns: string): IfAddr[] {
  return JSON.parse(run(inNetns(netns, ['ip', '-j', 'addr', 'show']))) as IfAddr[];
}

/**
 * TCP connections to ip:8080 from inside `fromNetns`, one every 20 ms for `ms` (each given 300 ms):
 * how many were tried and how many were answered.
 */
function probeAllAlong(
  fromNetns: string,
  ip: string,
  ms: number,
): Promise<{ tries: number; answered: number }> {
  const script = `
    const net = require('node:net');
    const [ip, ms] = process.argv.slice(1);
    let tries = 0, answered = 0;
    const t0 = Date.now();
    const tick = setInterval(() => {
      if (Date.now() - t0 > Number(ms)) {
        clearInterval(tick);
        setTimeout(() => { console.log(JSON.stringify({ tries, answered })); process.exit(0); }, 400);
        return;
      }
      tries++;
      const s = net.connect({ host: ip, port: 8080, timeout: 300 });
      s.on('connect', () => { answered++; s.destroy(); });
      s.on('timeout', () => s.destroy());
      s.on('error', () => undefined);
    }, 20);`;
  const argv = inNetns(fromNetns, [NODE_BIN, '-e', script, ip, String(ms)]);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(JSON.parse(out) as { tries: number; answered: number });
      } catch {
        reject(new Error(`the prober printed ${JSON.stringify(out)}`));
      }
    });
  });
}

/** TCP through the lab's prober, run inside `fromNetns`: who answered and which source it saw. */
function probe(
  fromNetns: string,
  ip: string,
): { ok: boolean; name?: string; source?: string; error?: string } {
  const out = run(
    inNetns(fromNetns, [
      NODE_BIN,
      join(REPO, 'lab', 'prober.ts'),
      JSON.stringify([{ id: ip, ip, tcp: true }]),
    ]),
  );
  const [r] = JSON.parse(out) as {
    tcp: { ok: boolean; error?: string; answer?: { pod: string; sawSource: string } };
  }[];
  return {
    ok: r!.tcp.ok,
    ...(r!.tcp.answer ? { name: r!.tcp.answer.pod, source: r!.tcp.answer.sawSource } : {}),
    ...(r!.tcp.error ? { error: r!.tcp.error } : {}),
  };
}

/**
 * A runtime's ADD/DEL on node1, made here the way the kubelet makes it (same conflist, same
 * plugin, from the node's netns) but once, without retries, for a pod bound to no kubelet.
 */
function asRuntime(
  state: LabState,
  c: { pod: string; netns: string; cid: string },
): [RunnerOptions, NetworkConfigList, RuntimeConf] {
  const node = state.nodes[0]!;
  return [
    { binDirs: [join(node.root, 'opt', 'cni', 'bin')], wrap: ['nsenter', `--net=/run/netns/${node.netns}`] },
    loadFirstConfList(join(node.root, 'etc', 'cni', 'net.d'))!,
    {
      containerId: c.cid,
      netns: `/run/netns/${c.netns}`,
      ifName: 'eth0',
      args: [
        ['IgnoreUnknown', '1'],
        ['K8S_POD_NAMESPACE', 'default'],
        ['K8S_POD_NAME', c.pod],
      ],
      capabilityArgs: {},
    },
  ];
}

/** A Pod bound to a node with no kubelet: only the test's own ADD runs for it. */
async function ghostPod(
  kube: KubeClient,
  name: string,
  annotations: Record<string, string>,
  labels: Record<string, string> = {},
): Promise<void> {
  await ensureNamespace(kube, 'default');
  await kube.create(Builtin.Pod, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', annotations, labels },
    spec: { nodeName: 'ghost', containers: [{ name: 'c', image: 'none' }] },
  });
}

async function statusOf(kube: KubeClient, ns: string, name: string) {
  const pod = await kube.get<Pod>(Builtin.Pod, name, ns);
  return parseNetworkStatus(pod.metadata.annotations?.[NETWORK_STATUS_ANNOTATION]);
}

async function allocationsOf(kube: KubeClient, match: (a: { pod: string; containerID: string }) => boolean) {
  const view = await ipamView(kube);
  return view.blocks.flatMap((b) => b.allocations.filter(match).map((a) => `${b.pool} ${a.ip}`));
}

describe('extra networks (NPWG) in the lab', () => {
  let state: LabState;
  let kube: KubeClient;
  let a: PodView;
  let b: PodView;

  beforeAll(async () => {
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
    state = await up({ nodes: 2, backend: 'vxlan', stateDir: STATE_DIR, prefix: PREFIX, subnet: SUBNET });
    kube = await KubeClient.fromKubeconfig(state.kubeconfig);
    await kube.mergePatch(ClusterNetworkResource, 'default', { spec: { attachments: ATTACHMENTS } });
    await eventually(
      async () =>
        (await kube.list(Builtin.NetworkAttachmentDefinition, 'default')).items.length === ATTACHMENTS.length,
      'the operator to render one NAD per attachment',
      60_000,
    );
    [a, b] = await Promise.all([
      createPod(kube, state, {
        name: 'mn-a',
        namespace: 'default',
        node: 'node1',
        annotations: {
          [NETWORKS_ANNOTATION]: JSON.stringify([
            { name: 'mv', ips: ['10.77.1.200'], mac: '02:77:00:00:00:0a' },
            { name: 'br', interface: 'br0' },
            { name: 'hd', namespace: 'default' },
          ]),
        },
      }),
      createPod(kube, state, {
        name: 'mn-b',
        namespace: 'default',
        node: 'node2',
        annotations: { [NETWORKS_ANNOTATION]: 'mv, br@br0, default/hd' },
      }),
    ]);
  });

  afterAll(async () => {
    await kube?.close();
    await down({ stateDir: STATE_DIR, prefix: PREFIX });
  });

  it('gives a pod eth0 and three extra networks whose network-status matches the interfaces inside it', async () => {
    for (const p of [a, b]) {
      const status = await eventually(async () => {
        const s = await statusOf(kube, p.namespace, p.name);
        return s.length === 4 ? s : undefined;
      }, `network-status on ${p.name}`);
      expect(status.map((s) => [s.name, s.interface, s.default])).toEqual([
        ['trellis', 'eth0', true],
        ['default/mv', 'net1', false],
        ['default/br', 'br0', false],
        ['default/hd', 'net3', false],
      ]);
      const links = podLinks(p.netns);
      for (const s of status) {
        const link = links.find((l) => l.ifname === s.interface);
        expect(link, `${p.name}: ${s.interface} from network-status exists in the pod`).toBeDefined();
        expect(link!.address).toBe(s.mac);
        expect(link!.addr_info.map((x) => x.local)).toEqual(expect.arrayContaining(s.ips ?? []));
        expect(s.ips?.length).toBeGreaterThan(0);
      }
    }
  });

  it('honours static ips and mac from the JSON form', async () => {
    const net1 = podLinks(a.netns).find((l) => l.ifname === 'net1')!;
    expect(net1.address).toBe('02:77:00:00:00:0a');
    expect(net1.addr_info.map((x) => x.local)).toContain('10.77.1.200');
    const held = await allocationsOf(kube, (x) => x.pod === 'mn-a');
    expect(held).toContain('attachment:mv 10.77.1.200');
  });

  it('reaches the peer on the other node over every network, with its own address as source', async () => {
    const sa = await statusOf(kube, 'default', 'mn-a');
    const sb = await statusOf(kube, 'default', 'mn-b');
    for (const net of ['default/mv', 'default/br', 'default/hd', 'trellis']) {
      const to = sb.find((s) => s.name === net)!.ips![0]!;
      const from = sa.find((s) => s.name === net)!.ips![0]!;
      const r = probe(a.netns, to);
      expect(r, `mn-a -> mn-b on ${net} (${to})`).toMatchObject({
        ok: true,
        name: 'default/mn-b',
        source: from,
      });
      const back = probe(b.netns, from);
      expect(back, `mn-b -> mn-a on ${net} (${from})`).toMatchObject({
        ok: true,
        name: 'default/mn-a',
        source: to,
      });
    }
  });

  it('trellis lab pod create --networks and trellis connectivity-test --network work on an attachment network', () => {
    const cli = (args: string[]) =>
      spawnSync(join(REPO, 'bin', 'trellis'), args, {
        encoding: 'utf8',
        env: { ...process.env, TRELLIS_LAB_DIR: STATE_DIR },
        timeout: 120_000,
      });
    const created = cli(['lab', 'pod', 'create', 'mn-e', '--node', 'node2', '--networks', 'mv@m0', '--json']);
    expect(created.status, created.stderr).toBe(0);
    const bad = cli(['lab', 'pod', 'create', 'mn-x', '--node', 'node2', '--networks', 'mv@a/b']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--networks: .*interface "a\/b" cannot contain/);
    const r = cli(['connectivity-test', '--network', 'mv', '--json']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      cells: { from: string; to: string; ok: boolean }[];
    };
    expect(report.cells.map((c) => `${c.from}->${c.to}`).sort()).toEqual(
      expect.arrayContaining(['default/mn-a->default/mn-e', 'default/mn-e->default/mn-b']),
    );
    expect(report.ok).toBe(true);
    expect(cli(['lab', 'pod', 'delete', 'mn-e']).status).toBe(0);
  });

  it('moves the default route with default-route and says so in network-status', async () => {
    const c = await createPod(kube, state, {
      name: 'mn-c',
      namespace: 'default',
      node: 'node1',
      annotations: {
        [NETWORKS_ANNOTATION]: JSON.stringify([{ name: 'mv', 'default-route': ['10.77.1.1'] }]),
      },
    });
    const status = await eventually(async () => {
      const s = await statusOf(kube, 'default', 'mn-c');
      return s.length === 2 ? s : undefined;
    }, 'network-status on mn-c');
    expect(status.map((s) => [s.name, s.default])).toEqual([
      ['trellis', false],
      ['default/mv', true],
    ]);
    const routes = JSON.parse(run(inNetns(c.netns, ['ip', '-j', 'route', 'show', 'default']))) as {
      gateway: string;
      dev: string;
    }[];
    expect(routes).toEqual([expect.objectContaining({ gateway: '10.77.1.1', dev: 'net1' })]);
    await deletePod(kube, state, 'mn-c', 'default');
  });

  it('a NAD with no spec.config gets the network named like it from /etc/cni/multus/net.d on the node (NPWG)', async () => {
    const node = state.nodes[0]!;
    const dir = join(node.root, 'etc', 'cni', 'multus', 'net.d');
    const file = join(dir, '50-ondisk.conflist');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      file,
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'ondisk',
        plugins: [
          {
            type: 'macvlan',
            master: 'eth1',
            mode: 'bridge',
            ipam: { type: 'host-local', subnet: '10.77.8.0/24' },
          },
        ],
      }),
    );
    await kube.create(Builtin.NetworkAttachmentDefinition, {
      apiVersion: 'k8s.cni.cncf.io/v1',
      kind: 'NetworkAttachmentDefinition',
      metadata: { name: 'ondisk', namespace: 'default' },
      spec: {},
    });
    try {
      const p = await createPod(kube, state, {
        name: 'od-a',
        namespace: 'default',
        node: node.name,
        annotations: { [NETWORKS_ANNOTATION]: 'ondisk' },
      });
      const status = await eventually(async () => {
        const st = await statusOf(kube, 'default', 'od-a');
        return st.length === 2 ? st : undefined;
      }, 'network-status on od-a');
      expect(status[1]).toMatchObject({ name: 'default/ondisk', interface: 'net1', default: false });
      const ip = status[1]!.ips![0]!;
      expect(ip).toMatch(/^10\.77\.8\.\d+$/);
      const net1 = podLinks(p.netns).find((l) => l.ifname === 'net1');
      expect(net1?.addr_info.map((x) => x.local)).toContain(ip);
      await deletePod(kube, state, 'od-a', 'default');
    } finally {
      await kube.delete(Builtin.NetworkAttachmentDefinition, 'ondisk', 'default').catch(() => undefined);
      rmSync(file, { force: true });
    }
  });

  it('STATUS: fine with extra networks in use (host-device device inside its pod); 50 for a missing delegate binary, 51 for a missing master, naming NAD, node and fix', async () => {
    const node = state.nodes[1]!;
    const binDir = join(node.root, 'opt', 'cni', 'bin');
    const opts: RunnerOptions = { binDirs: [binDir], wrap: ['nsenter', `--net=/run/netns/${node.netns}`] };
    // STATUS exists from CNI 1.1 on: our plugin of the node's list, asked as a 1.1 runtime asks
    // (Debian's portmap 1.1.1 predates STATUS and refuses it).
    const installed = loadFirstConfList(join(node.root, 'etc', 'cni', 'net.d'))!;
    const conflist = {
      ...installed,
      cniVersion: '1.1.0',
      plugins: installed.plugins.filter((p) => p.type === 'trellis'),
    };
    const status = () =>
      statusNetworkList(opts, conflist).then(
        () => undefined,
        (e: unknown) => e as CniInvokeError,
      );
    // mn-b holds node2's hdev0: the device is in the pod, not on the node, as host-device means.
    expect(tryRun(inNetns(node.netns, ['ip', 'link', 'show', HOST_DEVICE]))).toBe(false);
    expect(await status()).toBeUndefined();
    // A user's NAD whose delegate is a copy of macvlan named mvcopy, on its own master st0.
    const plugin = join(binDir, 'mvcopy');
    copyFileSync('/usr/lib/cni/macvlan', plugin);
    run(inNetns(node.netns, ['ip', 'link', 'add', 'st0', 'type', 'veth', 'peer', 'name', 'st0p']));
    run(inNetns(node.netns, ['ip', 'link', 'set', 'st0', 'up']));
    await kube.create(Builtin.NetworkAttachmentDefinition, {
      apiVersion: 'k8s.cni.cncf.io/v1',
      kind: 'NetworkAttachmentDefinition',
      metadata: { name: 'st', namespace: 'default' },
      spec: {
        config: JSON.stringify({
          cniVersion: '1.0.0',
          name: 'st-net',
          plugins: [
            {
              type: 'mvcopy',
              master: 'st0',
              mode: 'bridge',
              ipam: { type: 'host-local', subnet: '10.77.9.0/24' },
            },
          ],
        }),
      },
    });
    try {
      const p = await createPod(kube, state, {
        name: 'st-a',
        namespace: 'default',
        node: node.name,
        annotations: { [NETWORKS_ANNOTATION]: 'st' },
      });
      await eventually(async () => (await statusOf(kube, 'default', 'st-a')).length === 2, 'st-a attached');
      expect(await status()).toBeUndefined();

      rmSync(plugin);
      const noBinary = await status();
      expect(noBinary?.code).toBe(50);
      expect(noBinary?.message).toMatch(
        /NetworkAttachmentDefinition default\/st \(CNI network st-net\) on node node2: plugin "mvcopy" is not in \S+opt\/cni\/bin; install it there .*default\/st-a\) keeps their interface/,
      );
      copyFileSync('/usr/lib/cni/macvlan', plugin);
      expect(await status()).toBeUndefined();

      run(inNetns(node.netns, ['ip', 'link', 'del', 'st0']));
      const noMaster = await status();
      expect(noMaster?.code).toBe(51);
      expect(noMaster?.message).toMatch(
        /NetworkAttachmentDefinition default\/st \(CNI network st-net\) on node node2: mvcopy master interface st0 does not exist, so the 1 pod attached \(default\/st-a\) lost this network's interface; bring st0 back/,
      );
      // What 51 says is so: the kernel took the pod's macvlan with its master.
      expect(podLinks(p.netns).map((l) => l.ifname)).not.toContain('net1');

      // As the message says: bring st0 back (the reference macvlan refuses DEL while its master
      // is missing, so the pod could not be torn down), then recreate the pod.
      run(inNetns(node.netns, ['ip', 'link', 'add', 'st0', 'type', 'veth', 'peer', 'name', 'st0p']));
      expect(await status()).toBeUndefined();
      expect(podLinks(p.netns).map((l) => l.ifname)).not.toContain('net1');
      await deletePod(kube, state, 'st-a', 'default');
      expect(await status()).toBeUndefined();
    } finally {
      await kube.delete(Builtin.NetworkAttachmentDefinition, 'st', 'default').catch(() => undefined);
      rmSync(plugin, { force: true });
      tryRun(inNetns(node.netns, ['ip', 'link', 'del', 'st0']));
    }
  });

  describe('MultiNetworkPolicy on the macvlan network', () => {
    const MNP = MultiNetworkPolicyResource;
    const names = ['pa', 'pb', 'pc'];
    const pods: Record<string, PodView> = {};
    const mvIp: Record<string, string> = {};

    beforeAll(async () => {
      const made = await Promise.all(
        names.map((n, i) =>
          createPod(kube, state, {
            name: n,
            namespace: 'default',
            node: i === 1 ? 'node2' : 'node1',
            labels: { app: n },
            annotations: { [NETWORKS_ANNOTATION]: 'mv' },
          }),
        ),
      );
      for (const p of made) {
        pods[p.name] = p;
        const s = await eventually(async () => {
          const st = await statusOf(kube, 'default', p.name);
          return st.find((e) => e.name === 'default/mv');
        }, `network-status of ${p.name}`);
        mvIp[p.name] = s.ips![0]!;
      }
    });

    /** Every ordered pair over mv (TCP 8080) as "x->y": true when the connection is answered. */
    function table(): Record<string, boolean> {
      const out: Record<string, boolean> = {};
      for (const from of names)
        for (const to of names)
          if (from !== to) out[`${from}->${to}`] = probe(pods[from]!.netns, mvIp[to]!).ok;
      return out;
    }

    it('GIVEN ingress on pb from pa only (TCP 8080) and egress on pc to pa only THEN exactly those flows pass on mv, eth0 is untouched', async () => {
      await kube.create(
        MNP,
        multiNetworkPolicy('pb-from-pa', 'default', 'mv', {
          podSelector: { matchLabels: { app: 'pb' } },
          policyTypes: ['Ingress'],
          ingress: [
            {
              from: [{ podSelector: { matchLabels: { app: 'pa' } } }],
              ports: [{ protocol: 'TCP', port: 8080 }],
            },
          ],
        }),
      );
      await kube.create(
        MNP,
        multiNetworkPolicy('pc-to-pa', 'default', 'default/mv', {
          podSelector: { matchLabels: { app: 'pc' } },
          policyTypes: ['Egress'],
          egress: [{ to: [{ podSelector: { matchLabels: { app: 'pa' } } }] }],
        }),
      );
      const expected = {
        'pa->pb': true,
        'pa->pc': true,
        'pb->pa': true,
        'pb->pc': true,
        'pc->pa': true,
        'pc->pb': false,
      };
      await eventually(
        async () => JSON.stringify(table()) === JSON.stringify(expected),
        'the truth table',
        30_000,
      );
      expect(table()).toEqual(expected);
      // ICMP is not TCP 8080: pb's ingress rule does not let pa's ping in.
      const ping = (from: string, to: string) =>
        tryRun(inNetns(pods[from]!.netns, ['ping', '-c', '1', '-W', '1', to]));
      expect(ping('pa', mvIp.pb!)).toBe(false);
      expect(ping('pb', mvIp.pa!)).toBe(true);
      // The pod network is not this policy's business.
      expect(probe(pods.pc!.netns, pods.pb!.ip).ok).toBe(true);
    });

    it('isolates a new pod that a policy selects before its ADD returns: a peer probing it all along never gets in', async () => {
      // Deny-all ingress on mv for app=iso, and for pc so that we can see node1's agent has it.
      await kube.create(
        MNP,
        multiNetworkPolicy('iso-deny', 'default', 'mv', {
          podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['iso', 'pc'] }] },
          policyTypes: ['Ingress'],
        }),
      );
      await eventually(async () => !probe(pods.pa!.netns, mvIp.pc!).ok, 'pc isolated on mv', 30_000);
      const ip = '10.77.1.210';
      const c = { pod: 'iso', netns: `${PREFIX}-iso`, cid: 'iso'.padEnd(64, '0') };
      await ghostPod(
        kube,
        c.pod,
        { [NETWORKS_ANNOTATION]: JSON.stringify([{ name: 'mv', ips: [ip] }]) },
        {
          app: 'iso',
        },
      );
      run(['ip', 'netns', 'add', c.netns]);
      // The pod's server listens before its network exists, so any moment the interface is open
      // shows as an answered probe.
      const serve = inNetns(c.netns, [NODE_BIN, join(REPO, 'lab', 'probe.ts'), '--name', 'default/iso']);
      const server = spawn(serve[0]!, serve.slice(1), { stdio: 'ignore' });
      const runtime = asRuntime(state, c);
      try {
        const probing = probeAllAlong(pods.pa!.netns, ip, 4000);
        await new Promise((r) => setTimeout(r, 500));
        await addNetworkList(...runtime);
        // No policy pass has run for this pod yet (its network-status may not even be written).
        const table = tryRun(inNetns(c.netns, ['nft', 'list', 'table', 'inet', 'trellis-mnp-net1']));
        const seen = await probing;
        expect(table, 'the policy table is in the pod when ADD returns').toBe(true);
        expect(seen.tries).toBeGreaterThan(100);
        expect(seen.answered, 'probes answered while the pod was isolated').toBe(0);
        // The control: with the policy gone the same probe gets in, so the server was there.
        await kube.delete(MNP, 'iso-deny', 'default');
        await eventually(
          async () => probe(pods.pa!.netns, ip).ok,
          'iso reachable once the policy is gone',
          30_000,
        );
        await delNetworkList(...runtime);
        expect(await allocationsOf(kube, (x) => x.containerID === c.cid)).toEqual([]);
      } finally {
        server.kill();
        await delNetworkList(...runtime).catch(() => undefined); // DEL is idempotent
        tryRun(['ip', 'netns', 'del', c.netns]);
        await kube.delete(Builtin.Pod, c.pod, 'default').catch(() => undefined);
        await kube.delete(MNP, 'iso-deny', 'default').catch(() => undefined);
      }
    });

    it('lifts the isolation when the policies are deleted', async () => {
      await kube.delete(MNP, 'pb-from-pa', 'default');
      await kube.delete(MNP, 'pc-to-pa', 'default');
      await eventually(async () => Object.values(table()).every(Boolean), 'every flow allowed again', 30_000);
      for (const n of names) await deletePod(kube, state, n, 'default');
    });
  });

  describe('bad requests', () => {
    // A runtime's single ADD, made here the way the kubelet makes it (same conflist, same plugin,
    // from the node's netns) but without retries, so what it leaves behind can be checked exactly.
    let seq = 0;
    async function addOnce(
      annotation: string,
    ): Promise<{ err: CniInvokeError; netns: string; cid: string; pod: string }> {
      const pod = `bad-${++seq}`;
      await ghostPod(kube, pod, { [NETWORKS_ANNOTATION]: annotation });
      const netns = `${PREFIX}-bad${seq}`;
      run(['ip', 'netns', 'add', netns]);
      const cid = `bad${seq}`.padEnd(64, '0');
      const err = await addNetworkList(...asRuntime(state, { pod, netns, cid })).then(
        () => {
          throw new Error(`ADD of ${pod} with ${annotation} succeeded`);
        },
        (e: unknown) => e as CniInvokeError,
      );
      return { err, netns, cid, pod };
    }

    async function expectNothingLeft(r: { netns: string; cid: string; pod: string }, event: RegExp) {
      expect(podLinks(r.netns).map((l) => l.ifname)).toEqual(['lo']);
      expect(await allocationsOf(kube, (x) => x.containerID === r.cid)).toEqual([]);
      const events = await eventually(async () => {
        const list = await kube.list<KubeObject & { reason: string; message: string }>(
          Builtin.Event,
          'default',
          {
            fieldSelector: `involvedObject.name=${r.pod}`,
          },
        );
        return list.items.length ? list.items : undefined;
      }, `an Event on ${r.pod}`);
      // IPAM may post its own IPAllocationFailed too; ours names the element.
      const ours = events.find((e) => e.reason === 'NetworkAttachmentFailed');
      expect(ours, JSON.stringify(events.map((e) => e.reason))).toBeDefined();
      expect(ours!.message).toMatch(event);
      tryRun(['ip', 'netns', 'del', r.netns]);
    }

    it.each([
      [
        'a missing NAD',
        'mv, nope',
        /network 2 \(default\/nope\): NetworkAttachmentDefinition default\/nope does not exist/,
      ],
      ['a malformed annotation', '[{"name": "mv",}]', /k8s.v1.cni.cncf.io\/networks: is not valid JSON/],
      [
        'a duplicate interface',
        'mv@x1, br@x1',
        /network 2 \(default\/br\): interface name x1 is already used by network 1/,
      ],
      [
        'an address outside the pool',
        '[{"name":"mv"},{"name":"tiny","ips":["10.99.0.5"]}]',
        /network 2 \(default\/tiny\) on net2: .*10\.99\.0\.5/,
      ],
    ])(
      '%s: CNI error and Event naming the element, no interface, no address held',
      async (_what, annotation, msg) => {
        const r = await addOnce(annotation);
        expect(r.err).toBeInstanceOf(CniInvokeError);
        expect(r.err.message).toMatch(msg);
        await expectNothingLeft(r, msg);
      },
    );

    it('a failing network stops the ADD: the networks after it are never tried (NPWG 7.2)', async () => {
      // The log outlives a lab (down keeps it): only what this ADD wrote counts.
      const log = agentLog(state, state.nodes[0]!);
      const from = readFileSync(log, 'utf8').length;
      const r = await addOnce('[{"name":"tiny","ips":["10.99.0.5"]},{"name":"mv"}]');
      expect(r.err.message).toMatch(/network 1 \(default\/tiny\) on net1: .*10\.99\.0\.5/);
      await expectNothingLeft(r, /network 1 \(default\/tiny\)/);
      // mv's IPAM was never asked: the agent allocated nothing for this pod on any network
      const allocated = readFileSync(log, 'utf8')
        .slice(from)
        .split('\n')
        .filter((l) => l.includes('attachment address allocated') && l.includes(`default/${r.pod}"`));
      expect(allocated).toEqual([]);
    });

    it('an exhausted pool: the networks attached before it are torn down and their addresses released', async () => {
      const first = await createPod(kube, state, {
        name: 'tiny-holder',
        namespace: 'default',
        node: 'node2',
        annotations: { [NETWORKS_ANNOTATION]: 'tiny' },
      });
      expect(await allocationsOf(kube, (x) => x.pod === first.name)).toContain('attachment:tiny 10.77.4.10');
      const r = await addOnce('mv, tiny');
      expect(r.err.message).toMatch(/network 2 \(default\/tiny\) on net2: .*(exhausted|no free)/i);
      await expectNothingLeft(r, /network 2 \(default\/tiny\)/);
    });
  });

  it('DEL removes every attachment after the agent was SIGKILLed and restarted between ADD and DEL', async () => {
    const node = state.nodes[0]!;
    // mn-a holds node1's hdev0 (one per node): free it first.
    await deletePod(kube, state, 'mn-a', 'default');
    await eventually(
      async () => tryRun(inNetns(node.netns, ['ip', 'link', 'show', HOST_DEVICE])),
      'hdev0 back on node1',
    );
    await createPod(kube, state, {
      name: 'mn-d',
      namespace: 'default',
      node: node.name,
      annotations: { [NETWORKS_ANNOTATION]: 'mv, br, hd' },
    });
    await eventually(
      async () => (await statusOf(kube, 'default', 'mn-d')).length === 4,
      'network-status on mn-d',
    );
    expect(await allocationsOf(kube, (x) => x.pod === 'mn-d')).toHaveLength(4);
    expect(tryRun(inNetns(node.netns, ['ip', 'link', 'show', HOST_DEVICE]))).toBe(false);
    const starts = () => readFileSync(agentLog(state, node), 'utf8').split('serving CNI requests').length;
    const before = starts();
    expect(killAgent(state, node)).toBe(true);
    await startAgent(kube, state, node);
    // DEL must reach the restarted agent (with none listening the shim answers DEL itself and
    // leaves the addresses to orphan reconciliation: a different path).
    await eventually(async () => starts() > before, 'the restarted agent serving CNI');
    await deletePod(kube, state, 'mn-d', 'default');
    await eventually(
      async () => (await allocationsOf(kube, (x) => x.pod === 'mn-d')).length === 0,
      'every address of mn-d released',
    );
    // host-device's DEL gave the device back to the node.
    expect(tryRun(inNetns(node.netns, ['ip', 'link', 'show', HOST_DEVICE]))).toBe(true);
    const leftovers = spawnSync('ls', [join(node.root, 'var', 'lib', 'trellis', 'multinet', 'results')], {
      encoding: 'utf8',
    }).stdout;
    expect(leftovers).not.toMatch(/mv|br|hd/);
  });
});
