// The agent's configuration comes only from its environment: that is the DaemonSet contract the
// operator renders and the lab maps onto each simulated node's folders. No path is hard-coded.
import { isIP } from 'node:net';

export interface AgentConfig {
  nodeName: string;
  clusterNetwork: string;
  logLevel: string;
  cniConfDir: string;
  cniBinDir: string;
  /**
   * Where a NetworkAttachmentDefinition without spec.config finds its network: a conflist or conf
   * in this folder whose "name" is the NAD's (NPWG; Multus reads /etc/cni/multus/net.d). Unset: no
   * on-disk networks.
   */
  nadConfDir: string | undefined;
  socketPath: string;
  stateDir: string;
  /** The conflist rendered by the operator (a mounted ConfigMap key). */
  cniConfigFile: string;
  /** The plugin executable to install into cniBinDir as `trellis`. */
  cniBinary: string;
  /** Prometheus metrics and probe port; 0 disables. */
  metricsPort: number;
  /** Address the metrics/probe server binds: the node's (status.hostIP) or loopback. @default 127.0.0.1 */
  metricsAddress: string;
  /** kubeconfig path; undefined means in-cluster configuration. */
  kubeconfig: string | undefined;
  /** Prefix of every link the agent creates (node-side veths, the vxlan device). @default trl */
  devicePrefix: string;
  /** Orphan-IP reconciliation period in seconds; 0 disables. @default 60 */
  reconcileSeconds: number;
  /** NodeNetworkStatus heartbeat period in seconds. @default 30 */
  heartbeatSeconds: number;
  /** CNI GC and orphan reconciliation never release an address younger than this. @default 30 */
  gcGraceSeconds: number;
  /** Orphan reconciliation never releases an address younger than this. @default 60 */
  orphanGraceSeconds: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function required(env: NodeJS.ProcessEnv, name: string, hint: string): string {
  const v = env[name];
  if (!v) throw new ConfigError(`${name} is not set: ${hint}`);
  return v;
}

function int(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a non-negative integer`);
  return n;
}

function metricsAddress(v: string): string {
  if (isIP(v) === 0 || v === '0.0.0.0' || v === '::')
    throw new ConfigError(
      `TRELLIS_METRICS_ADDRESS=${JSON.stringify(v)} must be one address of this node (status.hostIP) or loopback, not a wildcard`,
    );
  return v;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const devicePrefix = env.TRELLIS_DEVICE_PREFIX || 'trl';
  if (!/^[a-z][a-z0-9]{0,3}$/.test(devicePrefix)) {
    throw new ConfigError(
      `TRELLIS_DEVICE_PREFIX=${JSON.stringify(devicePrefix)} must be 1-4 lowercase letters/digits`,
    );
  }
  return {
    nodeName: required(env, 'NODE_NAME', 'set it from the downward API (spec.nodeName)'),
    clusterNetwork: required(env, 'TRELLIS_CLUSTER_NETWORK', 'name the ClusterNetwork this agent serves'),
    logLevel: env.TRELLIS_LOG_LEVEL || 'info',
    cniConfDir: required(
      env,
      'TRELLIS_CNI_CONF_DIR',
      'the host CNI configuration folder, e.g. /etc/cni/net.d',
    ),
    cniBinDir: required(env, 'TRELLIS_CNI_BIN_DIR', 'the host CNI plugin folder, e.g. /opt/cni/bin'),
    nadConfDir: env.TRELLIS_NAD_CONF_DIR || undefined,
    socketPath: required(env, 'TRELLIS_SOCKET', 'the agent unix socket, e.g. /run/trellis/cni.sock'),
    stateDir: required(env, 'TRELLIS_STATE_DIR', 'a host folder for agent state, e.g. /var/lib/trellis'),
    cniConfigFile: required(
      env,
      'TRELLIS_CNI_CONFIG',
      'the conflist file mounted from the operator ConfigMap',
    ),
    cniBinary: required(env, 'TRELLIS_CNI_BINARY', 'the trellis CNI plugin executable to install'),
    metricsPort: int(env, 'TRELLIS_METRICS_PORT', 0),
    metricsAddress: metricsAddress(env.TRELLIS_METRICS_ADDRESS || '127.0.0.1'),
    kubeconfig: env.KUBECONFIG || undefined,
    devicePrefix,
    reconcileSeconds: int(env, 'TRELLIS_RECONCILE_SECONDS', 60),
    heartbeatSeconds: int(env, 'TRELLIS_HEARTBEAT_SECONDS', 30) || 30,
    gcGraceSeconds: int(env, 'TRELLIS_GC_GRACE_SECONDS', 30),
    orphanGraceSeconds: int(env, 'TRELLIS_ORPHAN_GRACE_SECONDS', 60),
  };
}
