// Runs a registry as an operator process: optional leader election, the controller while leading,
// and graceful shutdown on SIGTERM/SIGINT (stop watches, let the in-flight handler finish and
// record its progress, release the lease). Resolves when the operator has stopped.
import { hostname } from 'node:os';
import type { KubeClient } from '../kube/client.ts';
import type { InformerSet } from '../kube/informers.ts';
import type { Logger } from '../log/logger.ts';
import { noMetrics, type FrameworkMetrics } from '../metrics/framework.ts';
import { Controller } from './controller.ts';
import { LeaderElector } from './leader.ts';
import type { Registry } from './registry.ts';

export interface RunOptions {
  kube: KubeClient;
  registry: Registry;
  logger: Logger;
  /** Leader election settings, or false to act without a lease (one replica only). */
  leaderElection:
    | false
    | {
        namespace: string;
        name: string;
        /** @default `${hostname()}-${pid}` */
        identity?: string;
        leaseDurationSeconds?: number;
        renewDeadlineSeconds?: number;
        retryPeriodSeconds?: number;
      };
  /** @default network.trellis.dev/finalizer */
  finalizer?: string;
  metrics?: FrameworkMetrics;
  component?: string;
  /** Stops the operator when aborted (in addition to SIGTERM/SIGINT). */
  signal?: AbortSignal;
  /** Shared watch caches, kept across leadership terms (see Controller). @default private per term */
  informers?: InformerSet;
  /** Install SIGTERM/SIGINT handlers. @default true */
  handleSignals?: boolean;
}

export async function runOperator(opts: RunOptions): Promise<void> {
  const { logger } = opts;
  const metrics = opts.metrics ?? noMetrics;
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    logger.info({ signal: sig }, 'shutting down');
    stop.abort();
  };
  if (opts.handleSignals !== false) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  opts.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  const controller = () =>
    new Controller({
      kube: opts.kube,
      registry: opts.registry,
      logger,
      finalizer: opts.finalizer,
      metrics,
      component: opts.component,
      informers: opts.informers,
    });
  try {
    if (!opts.leaderElection) {
      metrics.leader(true);
      await controller().run(stop.signal);
      return;
    }
    const le = opts.leaderElection;
    const elector = new LeaderElector({
      kube: opts.kube,
      logger,
      namespace: le.namespace,
      name: le.name,
      identity: le.identity ?? `${hostname()}-${process.pid}`,
      leaseDurationSeconds: le.leaseDurationSeconds,
      renewDeadlineSeconds: le.renewDeadlineSeconds,
      retryPeriodSeconds: le.retryPeriodSeconds,
      onChange: (leading) => metrics.leader(leading),
    });
    await elector.run(stop.signal, (leading) => controller().run(leading));
  } finally {
    metrics.leader(false);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
