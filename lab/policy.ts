// The lab side of NetworkPolicy: the policy model built from the lab's API objects (the same
// builder the agents use, so `policy explain` predicts what they program), `trellis lab probe`
// (one connection attempt from a pod's netns, TCP or UDP) and batches of probes run with one
// prober process per sender netns, all senders at once.
import { join } from 'node:path';
import type { KubeClient } from '../src/kube/client.ts';
import type { KubeObject } from '../src/kube/object.ts';
import { Builtin } from '../src/kube/resource.ts';
import {
  buildModel,
  explain,
  resolveEnd,
  type Explanation,
  type FlowProtocol,
  type NetworkPolicy,
  type NodeObject,
  type PodObject,
  type PolicyModel,
} from '../src/policy/index.ts';
import { labPods, type PodView } from './podcmd.ts';
import type { ProbeOutcome, ProbeTarget } from './prober.ts';
import { inNetns, runAsync } from './sh.ts';
import { NODE_BIN, REPO, UserError, type LabState } from './state.ts';

/** The cluster's policy model as the agents see it, with the lab nodes' addresses when there is a lab. */
export async function labPolicyModel(kube: KubeClient, state: LabState | undefined): Promise<PolicyModel> {
  const [pods, namespaces, policies, nodes] = await Promise.all([
    kube.listAll<PodObject>(Builtin.Pod),
    kube.listAll<KubeObject>(Builtin.Namespace),
    kube.listAll<NetworkPolicy>(Builtin.NetworkPolicy),
    kube.listAll<NodeObject & KubeObject>(Builtin.Node),
  ]);
  const nodeObjects: NodeObject[] = nodes.items.map((n) => n);
  for (const n of state?.nodes ?? [])
    if (!nodeObjects.some((o) => o.metadata.name === n.name))
      nodeObjects.push({
        metadata: { name: n.name },
        status: { addresses: [{ type: 'InternalIP', address: n.ip }] },
      });
  return buildModel({
    pods: pods.items.filter((p) => !p.metadata.deletionTimestamp),
    namespaces: namespaces.items,
    policies: policies.items,
    nodes: nodeObjects,
  });
}

export type LabProtocol = 'TCP' | 'UDP';

export function parseProtocol(text: string | undefined): LabProtocol {
  const v = (text ?? 'TCP').toUpperCase();
  if (v !== 'TCP' && v !== 'UDP') throw new UserError(`--protocol must be TCP or UDP, got "${text}"`);
  return v;
}

/** `NS/POD` or `POD` (namespace default) -> the lab pod, which must be running with an IP. */
export function findPod(pods: PodView[], text: string): PodView {
  const [ns, name] = text.includes('/') ? (text.split('/', 2) as [string, string]) : ['default', text];
  const p = pods.find((x) => x.namespace === ns && x.name === name);
  if (!p) throw new UserError(`no lab pod ${ns}/${name} (see \`trellis lab pod list\`)`);
  if (!p.ip) throw new UserError(`pod ${ns}/${name} has no IP yet (phase ${p.phase})`);
  return p;
}

export interface ProbeRequest {
  from: PodView;
  to: string;
  toIp: string;
  port: number;
  protocol: LabProtocol;
  timeoutMs: number;
}

export interface ProbeResult {
  from: string;
  to: string;
  ip: string;
  port: number;
  protocol: LabProtocol;
  connected: boolean;
  sawSource?: string;
  error?: string;
}

/** Runs every probe, one prober process per sender netns, all senders in parallel. */
export async function probeMany(reqs: ProbeRequest[]): Promise<ProbeResult[]> {
  const bySender = new Map<string, ProbeRequest[]>();
  for (const r of reqs) bySender.set(r.from.netns, [...(bySender.get(r.from.netns) ?? []), r]);
  const results = new Map<ProbeRequest, ProbeResult>();
  await Promise.all(
    [...bySender].map(async ([netns, list]) => {
      const targets: ProbeTarget[] = list.map((r, i) => ({
        id: String(i),
        ip: r.toIp,
        port: r.port,
        udp: r.protocol === 'UDP',
        icmp: false,
        timeoutMs: r.timeoutMs,
      }));
      const out = await runAsync(
        inNetns(netns, [NODE_BIN, join(REPO, 'lab', 'prober.ts'), JSON.stringify(targets)]),
        {
          timeoutMs: 60_000,
        },
      );
      let outcomes: ProbeOutcome[] = [];
      try {
        outcomes = JSON.parse(out.stdout) as ProbeOutcome[];
      } catch {
        outcomes = [];
      }
      list.forEach((r, i) => {
        const o = r.protocol === 'UDP' ? outcomes[i]?.udp : outcomes[i]?.tcp;
        const res: ProbeResult = {
          from: `${r.from.namespace}/${r.from.name}`,
          to: r.to,
          ip: r.toIp,
          port: r.port,
          protocol: r.protocol,
          connected: !!o?.ok,
        };
        if (o?.answer?.sawSource) res.sawSource = o.answer.sawSource;
        if (!o) res.error = `prober failed in ${netns}: ${out.stderr.trim().slice(0, 300)}`;
        else if (o.error) res.error = o.error;
        results.set(r, res);
      });
    }),
  );
  return reqs.map((r) => results.get(r)!);
}

/** `trellis lab probe FROM TO`: one probe from a pod to a pod's IP. */
export async function labProbe(
  kube: KubeClient,
  state: LabState,
  from: string,
  to: string,
  port: number,
  protocol: LabProtocol,
  timeoutMs: number,
): Promise<ProbeResult> {
  const pods = await labPods(kube, state);
  const f = findPod(pods, from);
  const t = findPod(pods, to);
  const [r] = await probeMany([
    { from: f, to: `${t.namespace}/${t.name}`, toIp: t.ip, port, protocol, timeoutMs },
  ]);
  return r!;
}

/** Parses `80/TCP` (protocol defaults to TCP). */
export function parsePortProto(text: string | undefined): { port: number; protocol: FlowProtocol } {
  if (!text) throw new UserError('--port is required, e.g. --port 80/TCP');
  const [p, proto] = text.split('/', 2);
  const port = Number(p);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new UserError(`--port: ${JSON.stringify(p)} is not a port number (1-65535)`);
  const protocol = (proto ?? 'TCP').toUpperCase();
  if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP')
    throw new UserError(`--port: protocol must be TCP, UDP or SCTP, got "${proto}"`);
  return { port, protocol };
}

export async function labExplain(
  kube: KubeClient,
  state: LabState | undefined,
  from: string,
  to: string,
  port: number,
  protocol: FlowProtocol,
): Promise<Explanation> {
  const model = await labPolicyModel(kube, state);
  try {
    return explain(model, resolveEnd(model, from), resolveEnd(model, to), port, protocol);
  } catch (err: unknown) {
    throw new UserError(err instanceof Error ? err.message : String(err));
  }
}
