// The operator's settings, from flags first and environment second. Every value has a default
// that works in the lab; a bad value is a user error that names the flag and the variable.
import { parseSelector } from '../src/selector/index.ts';
export interface OperatorConfig {
  /** Kubeconfig path; unset means in-cluster/default loading. */
  kubeconfig: string | undefined;
  /** Namespace for the agent DaemonSet, its ServiceAccount, ConfigMap and the leader lease. @default trellis-system */
  namespace: string;
  /** @default true */
  leaderElection: boolean;
  /** @default trellis-operator */
  leaseName: string;
  /** @default 15 */
  leaseDurationSeconds: number;
  /** @default 10 */
  renewDeadlineSeconds: number;
  /** @default 2 */
  retryPeriodSeconds: number;
  /** Metrics port; 0 picks a free one, -1 turns metrics off. @default 9401 */
  metricsPort: number;
  /** Address for metrics and /healthz: loopback, or the node's (the chart sets status.hostIP). @default 127.0.0.1 */
  metricsHost: string;
  /** Agent image when the ClusterNetwork names none. @default the render module's default */
  agentImage: string | undefined;
  /** Seconds between full re-reconciles of each ClusterNetwork (drift safety net, status). @default 10 */
  resyncSeconds: number;
  /** Seconds between reclaim passes over blocks of deleted nodes. @default 60 */
  reclaimIntervalSeconds: number;
  /** Seconds a node must be gone before its blocks are reclaimed. @default 300 */
  reclaimGraceSeconds: number;
  /** Identity in the lease. @default hostname-pid */
  identity: string | undefined;
  /** Handle only ClusterNetworks matching this label selector (sharding, tests). @default all */
  clusterNetworkSelector: string | undefined;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface Option {
  flag: string;
  env: string;
}

const OPTIONS = {
  kubeconfig: { flag: '--kubeconfig', env: 'KUBECONFIG' },
  namespace: { flag: '--namespace', env: 'TRELLIS_NAMESPACE' },
  leaderElection: { flag: '--leader-elect', env: 'TRELLIS_LEADER_ELECT' },
  leaseName: { flag: '--lease-name', env: 'TRELLIS_LEASE_NAME' },
  leaseDurationSeconds: { flag: '--lease-duration', env: 'TRELLIS_LEASE_DURATION' },
  renewDeadlineSeconds: { flag: '--renew-deadline', env: 'TRELLIS_RENEW_DEADLINE' },
  retryPeriodSeconds: { flag: '--retry-period', env: 'TRELLIS_RETRY_PERIOD' },
  metricsPort: { flag: '--metrics-port', env: 'TRELLIS_METRICS_PORT' },
  metricsHost: { flag: '--metrics-host', env: 'TRELLIS_METRICS_HOST' },
  agentImage: { flag: '--agent-image', env: 'TRELLIS_AGENT_IMAGE' },
  resyncSeconds: { flag: '--resync', env: 'TRELLIS_RESYNC_SECONDS' },
  reclaimIntervalSeconds: { flag: '--reclaim-interval', env: 'TRELLIS_RECLAIM_INTERVAL' },
  reclaimGraceSeconds: { flag: '--reclaim-grace', env: 'TRELLIS_RECLAIM_GRACE' },
  identity: { flag: '--identity', env: 'TRELLIS_IDENTITY' },
  clusterNetworkSelector: { flag: '--selector', env: 'TRELLIS_CLUSTERNETWORK_SELECTOR' },
} satisfies Record<keyof OperatorConfig, Option>;

export const USAGE = `usage: operator/main.ts [flags]
${Object.values(OPTIONS)
  .map((o) => `  ${o.flag.padEnd(20)} (env ${o.env})`)
  .join('\n')}
Flags take a value as --flag=value or --flag value; --leader-elect takes true or false.`;

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  const flags = new Map<string, string>();
  const known = new Set(Object.values(OPTIONS).map((o) => o.flag));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    if (!known.has(flag)) throw new ConfigError(`unknown argument ${arg}\n${USAGE}`);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`${flag} needs a value`);
    flags.set(flag, value);
  }
  const raw = (o: Option): string | undefined => flags.get(o.flag) ?? (env[o.env] || undefined);
  const num = (o: Option, dflt: number, min: number): number => {
    const v = raw(o);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) {
      throw new ConfigError(`${o.flag} (env ${o.env}) must be a number >= ${min}, got "${v}"`);
    }
    return n;
  };
  const bool = (o: Option, dflt: boolean): boolean => {
    const v = raw(o);
    if (v === undefined) return dflt;
    if (/^(true|1|yes|on)$/i.test(v)) return true;
    if (/^(false|0|no|off)$/i.test(v)) return false;
    throw new ConfigError(`${o.flag} (env ${o.env}) must be true or false, got "${v}"`);
  };
  const namespace = raw(OPTIONS.namespace) ?? 'trellis-system';
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new ConfigError(
      `--namespace (env TRELLIS_NAMESPACE) "${namespace}" is not a valid namespace name (DNS-1123 label)`,
    );
  }
  const cfg: OperatorConfig = {
    kubeconfig: raw(OPTIONS.kubeconfig),
    namespace,
    leaderElection: bool(OPTIONS.leaderElection, true),
    leaseName: raw(OPTIONS.leaseName) ?? 'trellis-operator',
    leaseDurationSeconds: num(OPTIONS.leaseDurationSeconds, 15, 1),
    renewDeadlineSeconds: num(OPTIONS.renewDeadlineSeconds, 10, 0.5),
    retryPeriodSeconds: num(OPTIONS.retryPeriodSeconds, 2, 0.1),
    metricsPort: num(OPTIONS.metricsPort, 9401, -1),
    metricsHost: raw(OPTIONS.metricsHost) ?? '127.0.0.1',
    agentImage: raw(OPTIONS.agentImage),
    resyncSeconds: num(OPTIONS.resyncSeconds, 10, 0.1),
    reclaimIntervalSeconds: num(OPTIONS.reclaimIntervalSeconds, 60, 1),
    reclaimGraceSeconds: num(OPTIONS.reclaimGraceSeconds, 300, 0),
    identity: raw(OPTIONS.identity),
    clusterNetworkSelector: raw(OPTIONS.clusterNetworkSelector),
  };
  if (cfg.clusterNetworkSelector !== undefined) {
    try {
      parseSelector(cfg.clusterNetworkSelector, '--selector (env TRELLIS_CLUSTERNETWORK_SELECTOR)');
    } catch (err: unknown) {
      throw new ConfigError((err as Error).message);
    }
  }
  if (cfg.renewDeadlineSeconds >= cfg.leaseDurationSeconds) {
    throw new ConfigError(
      `--renew-deadline (${cfg.renewDeadlineSeconds}s) must be shorter than --lease-duration (${cfg.leaseDurationSeconds}s)`,
    );
  }
  return cfg;
}
