// Starts and stops one real lab node: containerd and kubelet in the node's network namespace and
// in a mount namespace of its own (persisted as a file under /run/trellis-lab, so the CLI, ctr and
// `lab down` can enter it later). `ip netns exec` is avoided on purpose: it remounts /sys and
// hides the cgroup mounts kubelet needs, so processes enter with nsenter instead.
import { execFileSync } from 'node:child_process';
import { killPids } from '../../src/util/process.ts';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { ControlPlane } from '../../src/controlplane/controlplane.ts';
import { cacheDir } from '../../src/controlplane/binaries.ts';
import { run, tryRun } from '../sh.ts';
import { startDetached } from '../spawn.ts';
import type { LabNode, LabState } from '../state.ts';
import {
  CONTAINERD_SOCKET,
  PRIVATE_DIRS,
  apiServiceRules,
  containerdConfig,
  containerdConfigV3,
  kubeletConfig,
  mountScript,
  realNodeFiles,
} from './config.ts';
import { pollUntil } from '../poll.ts';

const CGROUP = '/sys/fs/cgroup';

/** Folder of the lab's mount-namespace files; itself a private mount, as a namespace file needs. */
export function mountNsDir(prefix: string): string {
  return `/run/trellis-lab/${prefix}`;
}

export function mountNsFile(prefix: string, node: string): string {
  return join(mountNsDir(prefix), `${node}.mnt`);
}

function isMountPoint(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === path);
}

function ensureMountNsDir(prefix: string): string {
  const dir = mountNsDir(prefix);
  mkdirSync(dir, { recursive: true });
  if (!isMountPoint(dir)) {
    run(['mount', '--bind', dir, dir]);
    run(['mount', '--make-private', dir]);
  }
  return dir;
}

/** argv that runs cmd inside a node: its netns and its mount namespace. */
export function inNode(state: LabState, node: LabNode, cmd: string[]): string[] {
  return [
    'nsenter',
    `--net=/run/netns/${node.netns}`,
    `--mount=${mountNsFile(state.prefix, node.name)}`,
    ...cmd,
  ];
}

/** cgroup v1 hierarchies (cpu,cpuacct links are skipped: the real folders are listed too). */
function hierarchies(): string[] {
  return readdirSync(CGROUP)
    .map((d) => join(CGROUP, d))
    .filter(
      (p) => statSync(p).isDirectory() && existsSync(join(p, 'cgroup.procs')) && !p.endsWith('/unified'),
    );
}

function createCgroupRoot(root: string): void {
  for (const h of hierarchies()) {
    const dir = join(h, root);
    mkdirSync(dir, { recursive: true });
    // a new cpuset cgroup has no CPUs or memory nodes until given its parent's
    if (h.endsWith('/cpuset')) {
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        if (readFileSync(join(dir, f), 'utf8').trim() === '')
          writeFileSync(join(dir, f), readFileSync(join(h, f)));
      }
    }
  }
}

/** Every pid in a cgroup subtree of one hierarchy. */
function cgroupPids(dir: string): number[] {
  if (!existsSync(dir)) return [];
  const pids: number[] = [];
  const walk = (d: string): void => {
    for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean))
      pids.push(Number(p));
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
  };
  walk(dir);
  return pids;
}

function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  try {
    rmSync(dir, { recursive: false });
  } catch {
    tryRun(['rmdir', dir]);
  }
}

/** Processes whose mount namespace is the node's (kubelet, containerd, its shims). */
function pidsInMountNs(nsFile: string): number[] {
  let ino: number;
  try {
    ino = statSync(nsFile).ino;
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (statSync(`/proc/${p}/ns/mnt`).ino === ino && Number(p) !== process.pid) out.push(Number(p));
    } catch {
      // exited
    }
  }
  return out;
}

/** containerd 2.x built from its Go module by hack/build-containerd2.sh (same pins there). */
export const CONTAINERD2_VERSION = 'v2.4.2';
/** The reference portmap built beside it: speaks CNI 1.1 (STATUS, GC), Debian's 1.1.1 does not. */
export const PLUGINS_VERSION = 'v1.9.1';

/**
 * A containerd 2 node gets the portmap built beside containerd (a copy, not a link, so the agent's
 * container sees it too) in place of Debian's: with it every plugin of our chain speaks CNI 1.1.
 */
export function installModernPortmap(node: LabNode): void {
  const dest = join(node.root, 'opt', 'cni', 'bin', 'portmap');
  rmSync(dest, { force: true });
  copyFileSync(join(cacheDir(), 'bin', `portmap-${PLUGINS_VERSION}`), dest);
  chmodSync(dest, 0o755);
}

/** Which containerd a node runs: Debian's 1.6 (default) or 2.x from hack/build-containerd2.sh. */
export interface Runtime {
  containerd: string;
  ctr: string;
  config: (pauseImage: string) => string;
}

export function runtimeFor(state: LabState): Runtime {
  if (state.containerd !== 2)
    return { containerd: 'containerd', ctr: 'ctr', config: (pause) => containerdConfig(pause) };
  const bin = (name: string): string => join(cacheDir(), 'bin', `${name}-${CONTAINERD2_VERSION}`);
  return {
    containerd: bin('containerd'),
    ctr: bin('ctr'),
    config: (pause) => containerdConfigV3(pause, bin('containerd-shim-runc-v2')),
  };
}

export interface RealNodeOptions {
  cp: ControlPlane;
  apiPort: number;
  images: string[];
  pauseImage: string;
  say: (line: string) => void;
}

/** containerd up with the images imported, then kubelet. */
export async function startRealNode(state: LabState, node: LabNode, opts: RealNodeOptions): Promise<void> {
  const files = realNodeFiles(state.stateDir, state.prefix, node.name);
  for (const d of PRIVATE_DIRS) {
    mkdirSync(join(files.root, d), { recursive: true });
    mkdirSync(`/${d}`, { recursive: true }); // the mount point on the host (stays empty there)
  }
  mkdirSync(files.sysctlDir, { recursive: true });
  const runtime = runtimeFor(state);
  writeFileSync(files.containerdConfig, runtime.config(opts.pauseImage));
  writeFileSync(
    files.kubeletConfig,
    JSON.stringify(
      kubeletConfig({ caFile: opts.cp.pki.caCert, nodeIp: node.ip, cgroupRoot: files.cgroupRoot }),
      null,
      2,
    ),
  );
  const kubeconfig = opts.cp.kubeconfigFor(`kubelet-${node.name}`, `system:node:${node.name}`, [
    'system:nodes',
  ]);
  createCgroupRoot(files.cgroupRoot);

  // the node's mount namespace, kept by its file
  ensureMountNsDir(state.prefix);
  const nsFile = mountNsFile(state.prefix, node.name);
  writeFileSync(nsFile, '');
  run([
    'nsenter',
    `--net=/run/netns/${node.netns}`,
    'unshare',
    `--mount=${nsFile}`,
    '--propagation',
    'private',
    'sh',
    '-c',
    mountScript(files),
  ]);
  // kube-proxy's part for the one Service agents and the operator use: kubernetes.default
  run(
    ['ip', 'netns', 'exec', node.netns, 'nft', '-f', '-'],
    apiServiceRules({ serviceIp: '10.0.0.1', apiIp: state.gateway, apiPort: opts.apiPort }),
  );

  startDetached(state.stateDir, {
    name: `containerd-${node.name}`,
    cmd: inNode(state, node, [runtime.containerd, '--config', files.containerdConfig]),
    logFile: join(files.dir, 'containerd.log'),
    marker: files.containerdConfig,
  });
  const ctr = (args: string[]) =>
    inNode(state, node, [runtime.ctr, '--address', CONTAINERD_SOCKET, '-n', 'k8s.io', ...args]);
  await pollUntil(`containerd on ${node.name} (see ${join(files.dir, 'containerd.log')})`, 30_000, () =>
    tryRun(ctr(['version'])) ? true : undefined,
  );
  for (const archive of opts.images) {
    appendFileSync(join(files.dir, 'images.log'), run(ctr(['images', 'import', archive])));
  }

  const kubelet = join(cacheDir(), 'bin', 'kubelet');
  startDetached(state.stateDir, {
    name: `kubelet-${node.name}`,
    cmd: inNode(state, node, [
      kubelet,
      `--config=${files.kubeletConfig}`,
      `--kubeconfig=${kubeconfig}`,
      `--hostname-override=${node.name}`,
      `--node-ip=${node.ip}`,
      '--node-labels=lab.trellis.dev/node=true',
      '--v=1',
    ]),
    logFile: join(files.dir, 'kubelet.log'),
    marker: files.kubeletConfig,
  });
}

/** Imports one more archive into every node (an upgrade test's new agent image). */
export function importImage(state: LabState, archive: string): void {
  for (const node of state.nodes) {
    run(
      inNode(state, node, [
        runtimeFor(state).ctr,
        '--address',
        CONTAINERD_SOCKET,
        '-n',
        'k8s.io',
        'images',
        'import',
        archive,
      ]),
    );
  }
}

/**
 * Stops what a real node runs, whatever state it is in: every process in its cgroup root
 * (containers), every process in its mount namespace (kubelet, containerd, shims), then the
 * namespace file and the cgroups. Idempotent; needs only the prefix and node names.
 */
export function stopRealNodes(stateDir: string, prefix: string, nodes: string[]): string[] {
  const removed: string[] = [];
  for (const node of nodes) {
    const files = realNodeFiles(stateDir, prefix, node);
    const nsFile = mountNsFile(prefix, node);
    for (let i = 0; i < 5; i++) {
      const pids = [
        ...hierarchies().flatMap((h) => cgroupPids(join(h, files.cgroupRoot))),
        ...pidsInMountNs(nsFile),
      ];
      if (pids.length === 0) break;
      killPids(pids);
      execFileSync('sleep', ['0.3']);
    }
    if (existsSync(nsFile)) {
      tryRun(['umount', nsFile]);
      rmSync(nsFile, { force: true });
      removed.push(`mount namespace ${node}`);
    }
    for (const h of hierarchies()) removeCgroupTree(join(h, files.cgroupRoot));
  }
  const dir = mountNsDir(prefix);
  if (existsSync(dir) && readdirSync(dir).length === 0) {
    tryRun(['umount', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
  return removed;
}
