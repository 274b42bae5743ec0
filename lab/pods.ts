// Names and records shared by the lab kubelet and the CLI: where a pod's netns is, what the
// kubelet remembers about a sandbox it set up, and the Pod objects the CLI creates.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeObject } from '../src/kube/object.ts';
import type { NetworkConfigList, RuntimeConf } from '../src/cni/runner.ts';
import type { CniResult } from '../src/cni/types.ts';
import { PROBE_PORT, SERVE_PORTS, servePortName } from './probe.ts';
import type { LabNode, LabState } from './state.ts';

export interface ContainerPort {
  containerPort: number;
  hostPort?: number;
  hostIP?: string;
  protocol?: string;
  name?: string;
}

export interface PodSpec {
  nodeName?: string;
  hostNetwork?: boolean;
  containers: { name: string; image: string; ports?: ContainerPort[] }[];
  terminationGracePeriodSeconds?: number;
}

export interface PodStatus {
  phase?: string;
  podIP?: string;
  podIPs?: { ip: string }[];
  hostIP?: string;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
}

export type Pod = KubeObject<PodSpec, PodStatus>;

/** The netns a pod's sandbox lives in, derived from its uid so every tool can find it. */
export function podNetnsName(prefix: string, uid: string): string {
  return `${prefix}-pod-${uid.replaceAll('-', '').slice(0, 12)}`;
}

/** What the kubelet keeps on disk per sandbox so DEL after a restart has the same inputs as ADD. */
export interface SandboxRecord {
  uid: string;
  namespace: string;
  name: string;
  netns: string;
  containerId: string;
  conflist?: NetworkConfigList;
  result?: CniResult;
  portMappings: PortMapping[];
}

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP?: string;
}

export function sandboxDir(state: LabState, node: LabNode): string {
  return join(state.stateDir, 'nodes', node.name, 'pods');
}

export function readSandboxes(state: LabState, node: LabNode): SandboxRecord[] {
  const dir = sandboxDir(state, node);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as SandboxRecord);
}

/** One pod's sandbox record by UID (the file is named after it), or undefined. */
export function readSandbox(state: LabState, node: LabNode, uid: string): SandboxRecord | undefined {
  const file = join(sandboxDir(state, node), `${uid}.json`);
  if (!uid || uid.includes('/') || !existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as SandboxRecord;
}

export function writeSandbox(state: LabState, node: LabNode, rec: SandboxRecord): void {
  mkdirSync(sandboxDir(state, node), { recursive: true });
  const file = join(sandboxDir(state, node), `${rec.uid}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(rec, null, 2));
  // rename is atomic: a crash never leaves a half-written record
  renameSync(`${file}.tmp`, file);
}

export function removeSandbox(state: LabState, node: LabNode, uid: string): void {
  rmSync(join(sandboxDir(state, node), `${uid}.json`), { force: true });
}

export function portMappingsOf(pod: Pod): PortMapping[] {
  const out: PortMapping[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort) continue;
      const m: PortMapping = {
        hostPort: p.hostPort,
        containerPort: p.containerPort,
        protocol: (p.protocol ?? 'TCP').toLowerCase(),
      };
      if (p.hostIP) m.hostIP = p.hostIP;
      out.push(m);
    }
  }
  return out;
}

export interface NewPod {
  name: string;
  namespace: string;
  node: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  hostPort?: number;
}

export const LAB_POD_LABEL = 'lab.trellis.dev/pod';

/**
 * A Pod bound to a node, running the probe server on 8080 (optionally published on a hostPort) and
 * serving 80 and 81 over TCP and UDP under the upstream netpol e2e port names.
 */
export function podManifest(p: NewPod): Pod {
  const port: ContainerPort = { name: 'probe', containerPort: PROBE_PORT, protocol: 'TCP' };
  if (p.hostPort) port.hostPort = p.hostPort;
  const serve: ContainerPort[] = SERVE_PORTS.flatMap((n) =>
    (['tcp', 'udp'] as const).map((proto) => ({
      name: servePortName(n, proto),
      containerPort: n,
      protocol: proto.toUpperCase(),
    })),
  );
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: p.namespace,
      labels: { [LAB_POD_LABEL]: 'true', ...(p.labels ?? {}) },
      annotations: p.annotations ?? {},
    },
    spec: {
      nodeName: p.node,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'probe', image: 'trellis.dev/lab-probe:latest', ports: [port, ...serve] }],
    },
  };
}

/** The runtime side of a CNI call for a sandbox, as containerd builds it for a pod. */
export function runtimeConfFor(rec: SandboxRecord): RuntimeConf {
  return {
    containerId: rec.containerId,
    netns: `/run/netns/${rec.netns}`,
    ifName: 'eth0',
    args: [
      ['IgnoreUnknown', '1'],
      ['K8S_POD_NAMESPACE', rec.namespace],
      ['K8S_POD_NAME', rec.name],
      ['K8S_POD_INFRA_CONTAINER_ID', rec.containerId],
      ['K8S_POD_UID', rec.uid],
    ],
    capabilityArgs: rec.portMappings.length ? { portMappings: rec.portMappings } : {},
  };
}
