// `trellis connectivity-test` on a real cluster, as `cilium connectivity test` does it: deploy
// probe pods into a namespace of our own (one pod per node, plus one hostNetwork probe per node for
// the node checks), run the prober in each through `kubectl exec`, print the same matrix as the
// lab's, and delete the namespace. Pods are pinned with spec.nodeName so every node is covered
// whatever the scheduler thinks. Only the plan is pure (unit-tested); the rest talks to the cluster.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { kubectlPath } from '../../src/controlplane/binaries.ts';
import { ApiError } from '../../src/kube/errors.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import {
  failedCells,
  toCells,
  type Cell,
  type ConnectivityReport,
  type Endpoint,
  type Expectation,
} from '../connectivity.ts';
import type { ProbeOutcome, ProbeTarget } from '../prober.ts';
import type { ClusterTarget } from './target.ts';
import type { NodeObj, PodObj } from './status.ts';

export const POD_PORT = 8080;
/** hostNetwork probes listen here so they never collide with a node's own port 8080. */
export const HOST_PORT = 18080;
const MANAGED = { 'app.kubernetes.io/managed-by': 'trellis-connectivity-test' };

export interface ClusterTestOptions {
  namespace: string;
  image: string;
  /** ip of a host outside the cluster running a probe server on 8080 (the lab's outside host) */
  outside?: string;
  timeoutMs?: number;
  keep?: boolean;
  say?: (line: string) => void;
}

export function probePods(ns: string, image: string, nodes: string[]): KubeObject[] {
  const pods: KubeObject[] = [];
  for (const node of nodes) {
    for (const host of [false, true]) {
      const name = `${host ? 'host' : 'pod'}-${node}`.slice(0, 63).replace(/[^a-z0-9-]/g, '-');
      const port = host ? HOST_PORT : POD_PORT;
      pods.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: ns, labels: { ...MANAGED, 'trellis.dev/probe': host ? 'host' : 'pod' } },
        spec: {
          nodeName: node,
          hostNetwork: host,
          terminationGracePeriodSeconds: 1,
          tolerations: [{ operator: 'Exists' }],
          containers: [
            {
              name: 'probe',
              image,
              imagePullPolicy: 'IfNotPresent',
              args: ['--name', host ? `node/${node}` : `${ns}/${name}`, '--port', String(port)],
              readinessProbe: { tcpSocket: { port }, periodSeconds: 1 },
            },
          ],
        },
      });
    }
  }
  return pods;
}

/** Who probes whom and what source each receiver must see (the lab's rules, on probe pods). */
export function clusterPlan(
  pods: { name: string; ip: string; node: string; host: boolean }[],
  ns: string,
  outside?: string,
): { endpoints: Endpoint[]; senders: [Endpoint, Expectation[]][] } {
  const podEps: Endpoint[] = pods
    .filter((p) => !p.host)
    .map((p) => ({
      id: `${ns}/${p.name}`,
      kind: 'pod',
      netns: p.name,
      ip: p.ip,
      node: p.node,
      port: POD_PORT,
    }));
  const nodeEps: Endpoint[] = pods
    .filter((p) => p.host)
    .map((p) => ({ id: p.node, kind: 'node', netns: p.name, ip: p.ip, node: p.node, port: HOST_PORT }));
  const out: Endpoint | undefined = outside
    ? { id: 'outside', kind: 'outside', netns: '', ip: outside, port: POD_PORT }
    : undefined;
  const nodeIp = new Map(nodeEps.map((n) => [n.node, n.ip]));
  const senders: [Endpoint, Expectation[]][] = [];
  for (const p of podEps) {
    senders.push([
      p,
      [
        ...podEps.filter((q) => q !== p).map((q) => ({ target: q, expectedSource: p.ip })),
        ...nodeEps.map((n) => ({ target: n, expectedSource: p.ip })),
        ...(out ? [{ target: out, expectedSource: nodeIp.get(p.node ?? '') }] : []),
      ],
    ]);
  }
  for (const n of nodeEps) senders.push([n, podEps.map((q) => ({ target: q }))]);
  return { endpoints: [...podEps, ...nodeEps, ...(out ? [out] : [])], senders };
}

function kubectl(target: ClusterTarget): string[] {
  const bin = existsSync(kubectlPath()) ? kubectlPath() : 'kubectl';
  return [
    bin,
    ...(target.kubeconfig ? ['--kubeconfig', target.kubeconfig] : []),
    ...(target.context ? ['--context', target.context] : []),
  ];
}

function execProber(
  target: ClusterTarget,
  ns: string,
  pod: string,
  targets: ProbeTarget[],
): Promise<{ out: string; err: string }> {
  const [bin, ...args] = kubectl(target);
  return new Promise((resolve) => {
    const p = spawn(
      bin!,
      [...args, 'exec', '-n', ns, pod, '--', '/usr/local/bin/trellis-prober', JSON.stringify(targets)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e) => resolve({ out, err: `${err}${e.message}` }));
    p.on('close', () => resolve({ out, err }));
  });
}

async function waitGone(kube: KubeClient, ns: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await kube.getOrUndefined(Builtin.Namespace, ns))) return;
    await sleep(500);
  }
  throw new Error(`namespace ${ns} still terminating after ${timeoutMs} ms`);
}

export async function clusterConnectivityTest(
  kube: KubeClient,
  target: ClusterTarget,
  opts: ClusterTestOptions,
): Promise<ConnectivityReport> {
  const say = opts.say ?? (() => undefined);
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const ns = opts.namespace;
  const existing = await kube.getOrUndefined<KubeObject>(Builtin.Namespace, ns);
  if (existing) {
    if (
      existing.metadata.labels?.['app.kubernetes.io/managed-by'] !== MANAGED['app.kubernetes.io/managed-by']
    )
      throw new Error(`namespace ${ns} exists and is not ours; pick another with --namespace`);
    say(`deleting the namespace ${ns} left by an earlier run`);
    await kube.delete(Builtin.Namespace, ns).catch(() => undefined);
    await waitGone(kube, ns, timeoutMs);
  }
  const nodes = (await kube.listAll<NodeObj>(Builtin.Node)).items
    .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((n) => n.metadata.name)
    .sort();
  if (nodes.length === 0) throw new Error('no Ready node to test');
  say(
    `namespace ${ns}: a probe pod and a hostNetwork probe on each of ${nodes.length} nodes (${opts.image})`,
  );
  await kube.create(Builtin.Namespace, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ns, labels: MANAGED },
  });
  try {
    for (const p of probePods(ns, opts.image, nodes)) await kube.create(Builtin.Pod, p);
    const deadline = Date.now() + timeoutMs;
    let pods: PodObj[] = [];
    for (;;) {
      pods = (await kube.listAll<PodObj>(Builtin.Pod, ns)).items;
      const ready = pods.filter(
        (p) => p.status?.podIP && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      if (ready.length === nodes.length * 2) break;
      if (Date.now() > deadline) {
        const waiting = pods
          .filter((p) => !ready.includes(p))
          .map((p) => `${p.metadata.name} (${p.status?.phase ?? 'Pending'})`);
        throw new Error(
          `probe pods not ready after ${timeoutMs} ms: ${waiting.join(', ')}; see kubectl describe pod -n ${ns}`,
        );
      }
      await sleep(500);
    }
    const { endpoints, senders } = clusterPlan(
      pods.map((p) => ({
        name: p.metadata.name,
        ip: p.status?.podIP ?? '',
        node: p.spec?.nodeName ?? '',
        host: p.metadata.labels?.['trellis.dev/probe'] === 'host',
      })),
      ns,
      opts.outside,
    );
    say(`probing from ${senders.length} senders`);
    const cells: Cell[] = (
      await Promise.all(
        senders.map(async ([sender, exps]) => {
          const targets: ProbeTarget[] = exps.map((e) => ({
            id: e.target.id,
            ip: e.target.ip,
            port: e.target.port ?? POD_PORT,
          }));
          const res = await execProber(target, ns, sender.netns, targets);
          try {
            return toCells(sender, exps, JSON.parse(res.out) as ProbeOutcome[]);
          } catch {
            return failedCells(
              sender,
              exps,
              `prober in ${sender.netns} failed: ${res.err.trim().slice(0, 300)}`,
            );
          }
        }),
      )
    ).flat();
    const order = new Map(endpoints.map((e, i) => [e.id, i]));
    cells.sort(
      (a, b) =>
        (order.get(a.from) ?? 0) - (order.get(b.from) ?? 0) ||
        (order.get(a.to) ?? 0) - (order.get(b.to) ?? 0),
    );
    const failures = cells.filter((c) => !c.ok);
    return { ok: failures.length === 0 && cells.length > 0, endpoints, cells, failures };
  } finally {
    if (!opts.keep) {
      say(`removing namespace ${ns}`);
      try {
        await kube.delete(Builtin.Namespace, ns);
        await waitGone(kube, ns, timeoutMs);
      } catch (err: unknown) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
    }
  }
}
