// What a real lab node is made of, as pure values: its private folders, containerd's config, the
// kubelet's config and the script that builds the node's mount namespace. node.ts does the I/O.
// Each choice here answers a fact of this machine kind (see docs/real-nodes.md): runc cannot raise
// oom_score_adj (restrict_oom_score_adj), kubelet must not rewrite the host's kernel settings (bind
// files over them), two kubelets must not share a cgroup root, and every node keeps its own
// /opt/cni/bin, /etc/cni/net.d, /var/lib/*, /var/log/pods and /run.
import { join } from 'node:path';

/** Folders bound from the node's root over the same path, inside the node's mount namespace. */
export const PRIVATE_DIRS = [
  'etc/cni/net.d',
  'opt/cni/bin',
  'var/lib/kubelet',
  'var/lib/containerd',
  'var/lib/trellis',
  'var/lib/cni',
  'var/log/pods',
  'var/log/containers',
] as const;

/** Kernel settings kubelet writes at start; inside a node they land in files of the node instead. */
export const KUBELET_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
] as const;

export const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';

export interface RealNodeFiles {
  /** The node's folder (logs, configs) and its root (what is bound over the host paths). */
  dir: string;
  root: string;
  containerdConfig: string;
  kubeletConfig: string;
  kubeletKubeconfig: string;
  sysctlDir: string;
  /** cgroup root of this node's pods, the same name in every cgroup v1 hierarchy. */
  cgroupRoot: string;
}

export function realNodeFiles(stateDir: string, prefix: string, node: string): RealNodeFiles {
  const dir = join(stateDir, 'nodes', node);
  return {
    dir,
    root: join(dir, 'root'),
    containerdConfig: join(dir, 'containerd.toml'),
    kubeletConfig: join(dir, 'kubelet.yaml'),
    kubeletKubeconfig: join(dir, 'kubelet.kubeconfig'),
    sysctlDir: join(dir, 'sysctl'),
    cgroupRoot: `/${prefix}-${node}`,
  };
}

export function containerdConfig(pauseImage: string): string {
  return `# written by trellis lab up --real-nodes
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
# /opt/containerd would be the host's: nothing of a node may land outside its own folders
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "${CONTAINERD_SOCKET}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pauseImage}"
  # runc may not raise oom_score_adj here (no CAP_SYS_RESOURCE)
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`;
}

/**
 * containerd 2.x's own config (version 3: the CRI plugin split into images and runtime). Same
 * choices as the 1.6 config above; the shim is named by path, the one built with this containerd.
 */
export function containerdConfigV3(pauseImage: string, shimPath: string): string {
  return `# written by trellis lab up --real-nodes --containerd 2
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
# /opt/containerd would be the host's: nothing of a node may land outside its own folders
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.erofs"]

[grpc]
  address = "${CONTAINERD_SOCKET}"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "${pauseImage}"

[plugins."io.containerd.cri.v1.runtime"]
  # runc may not raise oom_score_adj here (no CAP_SYS_RESOURCE)
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = "${shimPath}"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/opt/cni/bin"]
    conf_dir = "/etc/cni/net.d"
`;
}

export function kubeletConfig(opts: { caFile: string; nodeIp: string; cgroupRoot: string }): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: opts.nodeIp,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: false },
      x509: { clientCAFile: opts.caFile },
    },
    authorization: { mode: 'AlwaysAllow' },
    cgroupDriver: 'cgroupfs',
    cgroupRoot: opts.cgroupRoot,
    containerRuntimeEndpoint: `unix://${CONTAINERD_SOCKET}`,
    failSwapOn: false,
    volumePluginDir: '/var/lib/kubelet/volumeplugins',
    serializeImagePulls: false,
    // a shared developer machine: only evict when really out of room
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '2%',
      'imagefs.available': '2%',
      'nodefs.inodesFree': '2%',
    },
    imageGCHighThresholdPercent: 99,
    imageGCLowThresholdPercent: 98,
    syncFrequency: '10s',
    nodeStatusUpdateFrequency: '5s',
    resolvConf: '/etc/resolv.conf',
    rotateCertificates: false,
    serverTLSBootstrap: false,
  };
}

const shq = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * Run once inside the node's new mount namespace (private propagation): a tmpfs /run, the node's
 * folders over the host paths, files over the kernel settings kubelet writes, then / made rshared
 * so kubelet's and the agent's Bidirectional mounts work (new peer groups: nothing reaches the host).
 */
export function mountScript(files: RealNodeFiles): string {
  const lines = ['set -e', 'mount -t tmpfs -o mode=755 tmpfs /run', 'mkdir -p /run/netns /run/containerd'];
  for (const d of PRIVATE_DIRS) lines.push(`mount --bind ${shq(join(files.root, d))} ${shq(`/${d}`)}`);
  for (const s of KUBELET_SYSCTLS) {
    const f = join(files.sysctlDir, s.replaceAll('/', '.'));
    lines.push(`cat /proc/sys/${s} > ${shq(f)}`, `mount --bind ${shq(f)} /proc/sys/${s}`);
  }
  lines.push('mount --make-rshared /');
  return lines.join('\n') + '\n';
}

/** nft rules in a node's netns standing in for kube-proxy's one Service the agents need: the API. */
export function apiServiceRules(opts: { serviceIp: string; apiIp: string; apiPort: number }): string {
  const dnat = `ip daddr ${opts.serviceIp} tcp dport 443 dnat to ${opts.apiIp}:${opts.apiPort}`;
  return `table ip trellis-lab-svc {
  chain output { type nat hook output priority -100; ${dnat}; }
  chain prerouting { type nat hook prerouting priority -100; ${dnat}; }
}
`;
}
