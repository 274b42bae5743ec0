// The operator as a real child process (node operator/main.ts) against the real kube-apiserver:
// a valid ClusterNetwork becomes Ready with observedGeneration == generation; spec changes re-render;
// a hand edit is reverted; deletion cleans up; an unrealisable spec is Degraded naming the field;
// node readiness is counted; of two operators with leader election exactly one acts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNetwork, ClusterNetworkSpec, Condition } from '../../src/api/clusternetwork.ts';
import { ClusterNetworkResource, NodeNetworkStatusResource } from '../../src/api/group.ts';
import type { Lease } from '../../src/framework/leader.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { TYPICAL_KERNEL } from '../support/kernel.ts';
import { adminClient, eventually, kubeconfigPath, uniqueName } from '../support/kube.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const TEST_LABEL = 'test.trellis.dev/operator-run';
const NAD_CRD = 'network-attachment-definitions.k8s.cni.cncf.io';

let kube: KubeClient;
let scratch: string;
const children: ChildProcess[] = [];
const clusterNetworks: string[] = [];

beforeAll(async () => {
  kube = await adminClient();
  await installCrds(kube);
  scratch = mkdtempSync(join(tmpdir(), 'trellis-operator-'));
});

afterAll(async () => {
  // Delete our ClusterNetworks while an operator still runs, so no finalizer is left behind.
  const live = children.filter((c) => c.exitCode === null && c.signalCode === null);
  if (live.length) {
    for (const name of clusterNetworks) await kube.delete(ClusterNetworkResource, name);
    await eventually(
      async () => {
        for (const name of clusterNetworks)
          if (await kube.getOrUndefined(ClusterNetworkResource, name)) return false;
        return true;
      },
      'test ClusterNetworks deleted',
      30_000,
    ).catch(() => undefined);
  }
  for (const name of clusterNetworks) {
    // Without an operator nothing would release the finalizer: drop it so the object can go.
    await kube
      .mergePatch(ClusterNetworkResource, name, { metadata: { finalizers: null } })
      .catch(() => undefined);
    await kube.delete(ClusterNetworkResource, name);
  }
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (process.env.TRELLIS_KEEP_TEST_LOGS) console.log(`operator logs kept in ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
  await kube.close();
});

interface Operator {
  child: ChildProcess;
  log: string;
  namespace: string;
  selector: string;
}

/** Starts node operator/main.ts handling only ClusterNetworks labelled with `run`. */
function startOperator(run: string, namespace: string, id: string, extra: string[] = []): Operator {
  const log = join(scratch, `${id}.log`);
  const fd = openSync(log, 'a');
  const selector = `${TEST_LABEL}=${run}`;
  const args = [
    join(ROOT, 'operator/main.ts'),
    `--namespace=${namespace}`,
    `--selector=${selector}`,
    '--metrics-port=0',
    '--metrics-host=127.0.0.1',
    `--identity=${id}`,
    '--resync=2',
    ...extra,
  ];
  const child = spawn(join(ROOT, 'node_modules/.bin/node'), args, {
    cwd: ROOT,
    env: { ...process.env, KUBECONFIG: kubeconfigPath() },
    stdio: ['ignore', fd, fd],
  });
  children.push(child);
  return { child, log, namespace, selector };
}

async function stopped(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((r) => {
    child.once('exit', () => r());
    child.kill(signal);
  });
}

function clusterNetwork(run: string, name: string, spec: Partial<ClusterNetworkSpec> = {}): ClusterNetwork {
  clusterNetworks.push(name);
  return {
    apiVersion: 'network.trellis.dev/v1alpha1',
    kind: 'ClusterNetwork',
    metadata: { name, labels: { [TEST_LABEL]: run } },
    spec: {
      pools: [{ name: 'v4', cidr: '10.244.0.0/16', blockSize: 26 }],
      backend: { mode: 'vxlan', mtu: 1400 },
      // Only this test's nodes (none unless a test makes some) run the agent.
      agent: { nodeSelector: { [TEST_LABEL]: run } },
      ...spec,
    },
  };
}

const getCn = (name: string) => kube.getOrUndefined<ClusterNetwork>(ClusterNetworkResource, name);
const condition = (cn: ClusterNetwork | undefined, type: string): Condition | undefined =>
  cn?.status?.conditions?.find((c) => c.type === type);

async function readyCn(name: string): Promise<ClusterNetwork> {
  return eventually(async () => {
    const cn = await getCn(name);
    return condition(cn, 'Ready')?.status === 'True' &&
      cn?.status?.observedGeneration === cn?.metadata.generation
      ? cn
      : undefined;
  }, `ClusterNetwork ${name} Ready at its generation`);
}

/** A Linux node that runs `run`'s agents (the test's ClusterNetworks select it by label). */
async function createNode(run: string, node: string): Promise<void> {
  await kube.create(Builtin.Node, {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: node, labels: { [TEST_LABEL]: run, 'kubernetes.io/os': 'linux' } },
  });
}

/** What the node's agent reports: its NodeNetworkStatus (made on the first report), ready for `cn`. */
async function reportNode(node: string, cn: string, interfaces?: string[]): Promise<void> {
  if (!(await kube.getOrUndefined(NodeNetworkStatusResource, node)))
    await kube.create(NodeNetworkStatusResource, {
      apiVersion: 'network.trellis.dev/v1alpha1',
      kind: 'NodeNetworkStatus',
      metadata: { name: node },
      spec: {},
    });
  await kube.mergePatch(
    NodeNetworkStatusResource,
    node,
    {
      status: {
        clusterNetwork: cn,
        ready: true,
        backend: 'vxlan',
        nodeIP: '192.0.2.1',
        lastHeartbeatTime: new Date().toISOString(),
        kernel: TYPICAL_KERNEL,
        ...(interfaces ? { interfaces } : {}),
      },
    },
    undefined,
    'status',
  );
}

async function deleteNode(node: string): Promise<void> {
  await kube.delete(NodeNetworkStatusResource, node);
  await kube.delete(Builtin.Node, node);
}

async function namespaceFor(prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  await kube.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

function agentName(cn: string): string {
  return `trellis-agent-${cn}`;
}
function configName(cn: string): string {
  return `trellis-cni-config-${cn}`;
}

async function metricsOf(op: Operator): Promise<string> {
  const port = await eventually(async () => {
    const line = readFileSync(op.log, 'utf8')
      .split('\n')
      .find((l) => l.includes('serving metrics'));
    return line ? (JSON.parse(line) as { port: number }).port : undefined;
  }, `metrics port in ${op.log}`);
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

function metricValue(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && !l.startsWith('#'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('the cluster operator', () => {
  const run = uniqueName('run');
  let ns: string;
  let op: Operator;

  beforeAll(async () => {
    ns = uniqueName('trellis-op');
    // A cluster without Multus: the operator must install the NAD CRD itself.
    await kube.delete(Builtin.CustomResourceDefinition, NAD_CRD);
    await eventually(
      async () => (await kube.getOrUndefined(Builtin.CustomResourceDefinition, NAD_CRD)) === undefined,
      'NAD CRD gone',
    );
    // The operator creates its namespace itself.
    op = startOperator(run, ns, 'single', ['--leader-elect=false']);
  });

  afterAll(async () => {
    // Deleting the test ClusterNetworks happens in the file's afterAll while this operator runs.
  });

  it('creates its namespace, renders a valid ClusterNetwork and reports Ready at its generation', async () => {
    const name = uniqueName('cn');
    await kube.create(ClusterNetworkResource, clusterNetwork(run, name));
    const cn = await readyCn(name);
    expect(cn.status?.nodes).toEqual({ desired: 0, ready: 0 });
    expect(cn.status?.nodesReady).toBe('0/0');
    expect(cn.status?.poolCount).toBe(1);
    expect(cn.status?.pools?.[0]).toMatchObject({ name: 'v4', cidr: '10.244.0.0/16', allocated: 0 });
    expect(cn.status?.pools?.[0]?.capacity).toBeGreaterThan(60_000);
    expect(condition(cn, 'Degraded')?.status).toBe('False');
    expect(condition(cn, 'Progressing')?.status).toBe('False');
    expect(cn.metadata.finalizers).toContain('network.trellis.dev/finalizer');

    expect(await kube.getOrUndefined(Builtin.Namespace, ns)).toBeDefined();
    expect(await kube.getOrUndefined(Builtin.CustomResourceDefinition, NAD_CRD)).toBeDefined();
    const ds = await kube.get<KubeObject>(Builtin.DaemonSet, agentName(name), ns);
    expect(ds.metadata.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'trellis',
      'network.trellis.dev/cluster-network': name,
    });
    expect(ds.metadata.managedFields?.some((f) => (f as { manager: string }).manager === 'trellis')).toBe(
      true,
    );
    expect(ds.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'network.trellis.dev/v1alpha1',
        kind: 'ClusterNetwork',
        name,
        uid: cn.metadata.uid,
        controller: true,
      },
    ]);
    for (const [r, n, inNs] of [
      [Builtin.ServiceAccount, agentName(name), ns],
      [Builtin.ConfigMap, configName(name), ns],
      [Builtin.ClusterRole, agentName(name), undefined],
      [Builtin.ClusterRoleBinding, agentName(name), undefined],
    ] as const) {
      expect(await kube.getOrUndefined(r, n, inNs), `${r.kind} ${n}`).toBeDefined();
    }
  });

  it('re-renders when the spec changes: conflist MTU and attachments come and go', async () => {
    const name = uniqueName('cn');
    const nadNs = await namespaceFor('nads');
    await kube.create(ClusterNetworkResource, clusterNetwork(run, name));
    await readyCn(name);
    const conflist = async () =>
      JSON.stringify((await kube.get<KubeObject>(Builtin.ConfigMap, configName(name), ns)).data);
    expect(await conflist()).toContain('1400');

    await kube.mergePatch(ClusterNetworkResource, name, {
      spec: {
        backend: { mode: 'vxlan', mtu: 1350 },
        attachments: [
          { name: 'sig-net', namespace: nadNs, type: 'bridge', pool: { cidr: '192.168.50.0/24' } },
        ],
      },
    });
    await eventually(async () => (await conflist()).includes('1350'), 'conflist with MTU 1350');
    const nad = await eventually(
      () => kube.getOrUndefined<KubeObject>(Builtin.NetworkAttachmentDefinition, 'sig-net', nadNs),
      'NAD sig-net created',
    );
    expect(JSON.parse((nad.spec as { config: string }).config)).toMatchObject({
      name: 'sig-net',
      plugins: [{ type: 'bridge' }, { type: 'tuning' }],
    });
    await readyCn(name);

    await kube.jsonPatch(ClusterNetworkResource, name, [{ op: 'remove', path: '/spec/attachments' }]);
    await eventually(
      async () =>
        (await kube.getOrUndefined(Builtin.NetworkAttachmentDefinition, 'sig-net', nadNs)) === undefined,
      'NAD sig-net deleted after its attachment was removed',
    );
    const cn = await readyCn(name);
    expect(cn.metadata.generation).toBe(3);
  });

  it('reverts a hand edit of the DaemonSet and re-creates a deleted ConfigMap', async () => {
    const name = uniqueName('cn');
    await kube.create(ClusterNetworkResource, clusterNetwork(run, name));
    await readyCn(name);
    const image = async () =>
      (await kube.get<KubeObject>(Builtin.DaemonSet, agentName(name), ns)).spec as {
        template: { spec: { containers: { image: string }[] } };
      };
    const original = (await image()).template.spec.containers[0]?.image;
    expect(original).toBeTruthy();
    const edited = await kube.jsonPatch<KubeObject>(
      Builtin.DaemonSet,
      agentName(name),
      [
        {
          op: 'replace',
          path: '/spec/template/spec/containers/0/image',
          value: 'example.invalid/hand-edited:1',
        },
      ],
      ns,
    );
    expect(JSON.stringify(edited.spec)).toContain('example.invalid/hand-edited:1');
    await eventually(
      async () => (await image()).template.spec.containers[0]?.image === original,
      'DaemonSet image reverted',
      15_000,
    );

    await kube.delete(Builtin.ConfigMap, configName(name), ns);
    await eventually(
      () => kube.getOrUndefined(Builtin.ConfigMap, configName(name), ns),
      'ConfigMap re-created',
      15_000,
    );

    const events = await kube.list<KubeObject>(Builtin.Event, 'default', {
      fieldSelector: `involvedObject.name=${name}`,
    });
    expect(events.items.map((e) => e.reason)).toContain('DriftCorrected');
  });

  it('removes everything it created when the ClusterNetwork is deleted', async () => {
    const name = uniqueName('cn');
    const nadNs = await namespaceFor('nads');
    await kube.create(
      ClusterNetworkResource,
      clusterNetwork(run, name, {
        attachments: [
          { name: 'media-net', namespace: nadNs, type: 'bridge', pool: { cidr: '192.168.60.0/24' } },
        ],
      }),
    );
    await readyCn(name);
    expect(await kube.getOrUndefined(Builtin.NetworkAttachmentDefinition, 'media-net', nadNs)).toBeDefined();
    await kube.delete(ClusterNetworkResource, name);
    await eventually(
      async () => (await getCn(name)) === undefined,
      'ClusterNetwork gone (finalizer released)',
    );
    for (const [r, n, inNs] of [
      [Builtin.DaemonSet, agentName(name), ns],
      [Builtin.ServiceAccount, agentName(name), ns],
      [Builtin.ConfigMap, configName(name), ns],
      [Builtin.ClusterRole, agentName(name), undefined],
      [Builtin.ClusterRoleBinding, agentName(name), undefined],
      [Builtin.NetworkAttachmentDefinition, 'media-net', nadNs],
    ] as const) {
      expect(await kube.getOrUndefined(r, n, inNs), `${r.kind} ${n} left behind`).toBeUndefined();
    }
  });

  it('marks a ClusterNetwork that cannot be realised Degraded, naming the field, and recovers when fixed', async () => {
    const name = uniqueName('cn');
    // VXLAN adds 50 bytes: an MTU of 1480 cannot be carried by a 1500-byte underlay.
    await kube.create(
      ClusterNetworkResource,
      clusterNetwork(run, name, { backend: { mode: 'vxlan', mtu: 1480 } }),
    );
    const degraded = await eventually(async () => {
      const cn = await getCn(name);
      return condition(cn, 'Degraded')?.status === 'True' ? cn : undefined;
    }, 'Degraded');
    expect(condition(degraded, 'Degraded')?.reason).toBe('Unrealisable');
    expect(condition(degraded, 'Degraded')?.message).toContain('spec.backend.mtu');
    expect(condition(degraded, 'Ready')?.status).toBe('False');
    expect(degraded.status?.observedGeneration).toBe(degraded.metadata.generation);
    expect(await kube.getOrUndefined(Builtin.DaemonSet, agentName(name), ns)).toBeUndefined();
    const events = await kube.list<KubeObject>(Builtin.Event, 'default', {
      fieldSelector: `involvedObject.name=${name}`,
    });
    expect(
      events.items.some((e) => e.reason === 'Unrealisable' && String(e.message).includes('spec.backend.mtu')),
    ).toBe(true);

    await kube.mergePatch(ClusterNetworkResource, name, { spec: { backend: { mode: 'vxlan', mtu: 1450 } } });
    const fixed = await readyCn(name);
    expect(condition(fixed, 'Degraded')?.status).toBe('False');
  });

  it('counts nodes selected by the agent and those whose agent reports ready', async () => {
    const name = uniqueName('cn');
    const nodes = [uniqueName('node'), uniqueName('node')];
    for (const n of nodes) await createNode(run, n);
    try {
      await kube.create(ClusterNetworkResource, clusterNetwork(run, name));
      await eventually(async () => {
        const cn = await getCn(name);
        return (
          cn?.status?.nodesReady === '0/2' &&
          condition(cn, 'Ready')?.status === 'False' &&
          condition(cn, 'Progressing')?.status === 'True'
        );
      }, 'nodes 0/2, Progressing');
      for (const n of nodes) await reportNode(n, name);
      const cn = await readyCn(name);
      expect(cn.status?.nodes).toEqual({ desired: 2, ready: 2 });
      expect(cn.status?.nodesReady).toBe('2/2');
    } finally {
      for (const n of nodes) await deleteNode(n);
    }
  });

  it('is Degraded naming node and field when an attachment master is missing on a node, and recovers', async () => {
    const name = uniqueName('cn');
    const node = uniqueName('node');
    await createNode(run, node);
    try {
      await reportNode(node, name, ['eth0']);
      await kube.create(
        ClusterNetworkResource,
        clusterNetwork(run, name, {
          attachments: [
            { name: `${name}-mv`, type: 'macvlan', master: 'eth1', pool: { cidr: '10.77.0.0/24' } },
          ],
        }),
      );
      const degraded = await eventually(async () => {
        const d = condition(await getCn(name), 'Degraded');
        return d?.status === 'True' ? d : undefined;
      }, 'Degraded for the missing master').catch(async (e: unknown) => {
        throw new Error(`${String(e)}: ${JSON.stringify((await getCn(name))?.status)}`);
      });
      expect(degraded.message).toContain(
        `spec.attachments[0].master: attachment ${name}-mv: interface eth1 does not exist on node ${node}`,
      );
      // The NAD is rendered anyway: nodes that have the master can serve it.
      expect(
        await kube.getOrUndefined(Builtin.NetworkAttachmentDefinition, `${name}-mv`, 'default'),
      ).toBeDefined();
      await reportNode(node, name, ['eth0', 'eth1']);
      await readyCn(name);
    } finally {
      await deleteNode(node);
    }
  });

  it('serves Prometheus metrics', async () => {
    const text = await metricsOf(op);
    expect(metricValue(text, 'trellis_operator_reconcile_total')).toBeGreaterThan(0);
    expect(text).toContain('trellis_operator_handler_duration_seconds_bucket');
    expect(metricValue(text, 'trellis_operator_leader')).toBe(1);
    expect(metricValue(text, 'trellis_operator_objects_applied_total')).toBeGreaterThan(0);
  });
});

describe('operator restarts', () => {
  it('a restarted operator re-applies what was changed while it was down, and exits cleanly on SIGTERM', async () => {
    const run = uniqueName('run');
    const ns = uniqueName('trellis-rs');
    const first = startOperator(run, ns, 'before-kill', ['--leader-elect=false']);
    const name = uniqueName('cn');
    await kube.create(ClusterNetworkResource, clusterNetwork(run, name));
    await readyCn(name);
    await stopped(first.child, 'SIGKILL');

    // While no operator runs, someone edits the DaemonSet: nothing reverts it.
    await kube.jsonPatch(
      Builtin.DaemonSet,
      agentName(name),
      [
        {
          op: 'replace',
          path: '/spec/template/spec/containers/0/image',
          value: 'example.invalid/while-down:1',
        },
      ],
      ns,
    );
    const second = startOperator(run, ns, 'after-kill', ['--leader-elect=false']);
    await eventually(async () => {
      const ds = await kube.get<KubeObject>(Builtin.DaemonSet, agentName(name), ns);
      return !JSON.stringify(ds.spec).includes('while-down');
    }, 'the edit made while the operator was down reverted by the restarted operator');

    await kube.delete(ClusterNetworkResource, name);
    await eventually(
      async () => (await getCn(name)) === undefined,
      'ClusterNetwork deleted by the restarted operator',
    );
    await stopped(second.child, 'SIGTERM');
    expect(second.child.exitCode).toBe(0);
    expect(readFileSync(second.log, 'utf8')).toContain('"msg":"stopped"');
  });
});

describe('two operator processes with leader election', () => {
  it('exactly one acts; when it is killed the other takes over after the lease expires', async () => {
    const run = uniqueName('run');
    const ns = uniqueName('trellis-le');
    const lease = ['--lease-duration=4', '--renew-deadline=3', '--retry-period=0.5'];
    const a = startOperator(run, ns, 'op-a', lease);
    const b = startOperator(run, ns, 'op-b', lease);
    const holder = async () =>
      (await kube.getOrUndefined<Lease>(Builtin.Lease, 'trellis-operator', ns))?.spec?.holderIdentity;
    const leaderId = await eventually(holder, 'a lease holder');
    const [leader, follower] = leaderId === 'op-a' ? [a, b] : [b, a];

    const first = uniqueName('cn');
    await kube.create(ClusterNetworkResource, clusterNetwork(run, first));
    await readyCn(first);
    const leaderMetrics = await metricsOf(leader);
    const followerMetrics = await metricsOf(follower);
    expect(metricValue(leaderMetrics, 'trellis_operator_leader')).toBe(1);
    expect(metricValue(followerMetrics, 'trellis_operator_leader')).toBe(0);
    expect(metricValue(leaderMetrics, 'trellis_operator_objects_applied_total')).toBeGreaterThan(0);
    expect(metricValue(followerMetrics, 'trellis_operator_objects_applied_total')).toBe(0);
    expect(metricValue(followerMetrics, 'trellis_operator_reconcile_total')).toBe(0);

    await stopped(leader.child, 'SIGKILL');
    const second = uniqueName('cn');
    await kube.create(ClusterNetworkResource, clusterNetwork(run, second));
    await readyCn(second);
    expect(await holder()).toBe(follower === a ? 'op-a' : 'op-b');
    expect(metricValue(await metricsOf(follower), 'trellis_operator_objects_applied_total')).toBeGreaterThan(
      0,
    );
    expect(await kube.getOrUndefined(Builtin.DaemonSet, agentName(second), ns)).toBeDefined();
  });
});
