// Turns the agent DaemonSet the operator rendered into a process on a simulated node, the way a
// kubelet would run its container: same command, args and env; hostPath volumes mapped into the
// node's lab folder; configMap volumes materialised as files; container paths in env values and
// args rewritten to the host folder they mount. Pure (no I/O), so the mapping is unit-tested.
import { join } from 'node:path';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string };
    resourceFieldRef?: { resource: string };
  };
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
}

export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string; items?: { key: string; path: string }[] };
  emptyDir?: Record<string, unknown>;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  serviceAccountName?: string;
  hostNetwork?: boolean;
}

export interface DaemonSetLike {
  metadata: { name: string; namespace?: string };
  spec?: { template?: { spec?: PodSpec } };
}

export interface NodeContext {
  nodeName: string;
  nodeIP: string;
  /** The node's filesystem root in the lab, e.g. <state>/nodes/node1/root */
  nodeRoot: string;
  /** Where configMap and emptyDir volumes are materialised for this node */
  volumesDir: string;
  repo: string;
  nodeBin: string;
  kubeconfig: string;
  /** configMap name -> data, fetched by the caller */
  configMaps: Record<string, Record<string, string>>;
}

export interface LaunchSpec {
  container: string;
  cmd: string[];
  env: Record<string, string>;
  /** Files to write before starting (configMap volumes), host path -> content */
  files: Record<string, string>;
  /** Host folders to create (hostPath DirectoryOrCreate, emptyDir) */
  dirs: string[];
}

/** Host paths that are the machine's own even on a simulated node (kernel and netns views). */
const PASSTHROUGH = [
  '/run/netns',
  '/var/run/netns',
  '/proc',
  '/sys',
  '/lib/modules',
  '/dev',
  '/run/xtables.lock',
];

/** Executables inside the agent image and where the lab finds them. */
function imageCommands(ctx: NodeContext): Record<string, string[]> {
  return {
    '/usr/local/bin/trellis-agent': [ctx.nodeBin, join(ctx.repo, 'agent', 'main.ts')],
    'trellis-agent': [ctx.nodeBin, join(ctx.repo, 'agent', 'main.ts')],
  };
}

/** Folders inside the agent image and where the lab finds them. */
function imagePaths(ctx: NodeContext): [string, string][] {
  return [['/opt/trellis/bin', join(ctx.repo, 'dist')]];
}

export function hostPathFor(ctx: NodeContext, hostPath: string): string {
  const clean = hostPath.replace(/\/+$/, '') || '/';
  if (PASSTHROUGH.some((p) => clean === p || clean.startsWith(`${p}/`))) return clean;
  return join(ctx.nodeRoot, clean);
}

/** Container path -> host path, longest container path first. */
export function mountTable(spec: PodSpec, c: Container, ctx: NodeContext): [string, string][] {
  const vols = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  const table: [string, string][] = [];
  for (const m of c.volumeMounts ?? []) {
    const v = vols.get(m.name);
    if (!v)
      throw new Error(`container ${c.name} mounts volume "${m.name}" that the DaemonSet does not declare`);
    let host: string;
    if (v.hostPath) host = hostPathFor(ctx, v.hostPath.path);
    else if (v.configMap || v.emptyDir) host = join(ctx.volumesDir, v.name);
    else
      throw new Error(
        `volume "${v.name}" has a type the lab cannot map (hostPath, configMap and emptyDir are supported)`,
      );
    if (m.subPath) host = join(host, m.subPath);
    table.push([m.mountPath.replace(/\/+$/, '') || '/', host]);
  }
  table.push(...imagePaths(ctx));
  return table.sort((a, b) => b[0].length - a[0].length);
}

/** Rewrites a container path (or --flag=path) to its host path; other values pass unchanged. */
export function rewritePath(value: string, table: [string, string][]): string {
  const eq = value.startsWith('-') ? value.indexOf('=') : -1;
  if (eq >= 0) return value.slice(0, eq + 1) + rewritePath(value.slice(eq + 1), table);
  for (const [inside, host] of table) {
    if (value === inside) return host;
    if (value.startsWith(`${inside}/`)) return host + value.slice(inside.length);
  }
  return value;
}

function fieldValue(path: string, ds: DaemonSetLike, ctx: NodeContext): string {
  switch (path) {
    case 'spec.nodeName':
      return ctx.nodeName;
    case 'status.hostIP':
    case 'status.podIP':
      return ctx.nodeIP; // the agent runs with hostNetwork
    case 'metadata.namespace':
      return ds.metadata.namespace ?? 'default';
    case 'metadata.name':
      return `${ds.metadata.name}-${ctx.nodeName}`;
    case 'spec.serviceAccountName':
      return ds.spec?.template?.spec?.serviceAccountName ?? 'default';
    default:
      throw new Error(`env fieldRef "${path}" is not supported by the lab kubelet`);
  }
}

export function launchSpec(ds: DaemonSetLike, c: Container, ctx: NodeContext): LaunchSpec {
  const spec = ds.spec?.template?.spec;
  if (!spec) throw new Error(`DaemonSet ${ds.metadata.name} has no pod template`);
  const table = mountTable(spec, c, ctx);
  const known = imageCommands(ctx);
  const command = c.command ?? ['/usr/local/bin/trellis-agent'];
  const exe = known[command[0]];
  if (!exe) {
    throw new Error(
      `container ${c.name} runs "${command[0]}", which the lab cannot map to a program (known: ${Object.keys(known).join(', ')})`,
    );
  }
  const cmd = [...exe, ...[...command.slice(1), ...(c.args ?? [])].map((a) => rewritePath(a, table))];

  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    let v: string | undefined;
    if (e.value !== undefined) v = e.value;
    else if (e.valueFrom?.fieldRef) v = fieldValue(e.valueFrom.fieldRef.fieldPath, ds, ctx);
    else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      v = ctx.configMaps[ref.name]?.[ref.key];
      if (v === undefined && !ref.optional)
        throw new Error(`env ${e.name}: configMap ${ref.name} has no key ${ref.key}`);
    } else if (e.valueFrom?.resourceFieldRef) v = undefined;
    else if (e.valueFrom?.secretKeyRef)
      throw new Error(`env ${e.name}: secretKeyRef is not supported by the lab kubelet`);
    else v = '';
    if (v !== undefined) env[e.name] = rewritePath(v, table);
  }
  env.KUBECONFIG = ctx.kubeconfig;

  const files: Record<string, string> = {};
  const dirs: string[] = [];
  const mounted = new Set((c.volumeMounts ?? []).map((m) => m.name));
  for (const v of spec.volumes ?? []) {
    if (!mounted.has(v.name)) continue;
    if (v.configMap) {
      const data = ctx.configMaps[v.configMap.name];
      if (!data) throw new Error(`volume ${v.name}: configMap ${v.configMap.name} not found`);
      const items = v.configMap.items ?? Object.keys(data).map((k) => ({ key: k, path: k }));
      for (const it of items) files[join(ctx.volumesDir, v.name, it.path)] = data[it.key] ?? '';
      dirs.push(join(ctx.volumesDir, v.name));
    } else if (v.emptyDir) dirs.push(join(ctx.volumesDir, v.name));
    else if (v.hostPath) {
      const host = hostPathFor(ctx, v.hostPath.path);
      const t = v.hostPath.type ?? '';
      if (!host.startsWith(ctx.nodeRoot)) continue; // passthrough paths are the machine's own
      if (t === 'File' || t === 'FileOrCreate' || t === 'Socket' || /\.(sock|lock)$/.test(host))
        dirs.push(join(host, '..'));
      else dirs.push(host);
    }
  }
  return { container: c.name, cmd, env, files, dirs };
}

/** Names of the configMaps the pod template refers to (volumes and env). */
export function configMapsOf(spec: PodSpec): string[] {
  const names = new Set<string>();
  for (const v of spec.volumes ?? []) if (v.configMap) names.add(v.configMap.name);
  for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
    for (const e of c.env ?? [])
      if (e.valueFrom?.configMapKeyRef) names.add(e.valueFrom.configMapKeyRef.name);
  }
  return [...names];
}

/** The agent's container: the one named agent / trellis-agent, else the first. */
export function agentContainer(spec: PodSpec): Container {
  const c =
    spec.containers.find((x) => x.name === 'agent' || x.name === 'trellis-agent') ?? spec.containers[0];
  if (!c) throw new Error('the agent DaemonSet has no containers');
  return c;
}
