// The Trellis cluster operator: reconciles ClusterNetworks into the agent DaemonSet, its RBAC, the
// CNI conflist ConfigMap and NetworkAttachmentDefinitions; keeps them as rendered; reports status.
// Settings come from flags or env (see operator/config.ts); logs are pino JSON on stderr.
import { hostname } from 'node:os';
import { runOperator } from '../src/framework/index.ts';
import { KubeClient } from '../src/kube/client.ts';
import { Builtin } from '../src/kube/resource.ts';
import { createLogger } from '../src/log/logger.ts';
import { createFrameworkMetrics } from '../src/metrics/framework.ts';
import { createMetricsRegistry } from '../src/metrics/registry.ts';
import { serveMetrics, type MetricsServer } from '../src/metrics/server.ts';
import { ConfigError, parseConfig, type OperatorConfig } from './config.ts';
import { ensureNadCrd, waitForClusterNetworkCrd } from './crds.ts';
import { buildRegistry } from './handlers.ts';
import { operatorCaches } from './cache.ts';
import type { OperatorContext } from './context.ts';
import { reconcileClusterNetwork, statusFromCaches } from './reconcile.ts';
import { StatusWriter } from './status-writer.ts';
import { InformerSet } from '../src/kube/informers.ts';
import { KeyedMutex } from '../src/util/keyed-mutex.ts';
import { createOperatorMetrics } from './metrics.ts';

const logger = createLogger('operator');

let config: OperatorConfig;
try {
  config = parseConfig(process.argv.slice(2), process.env);
} catch (err: unknown) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`trellis operator: ${err.message}\n`);
  process.exit(2);
}

async function main(cfg: OperatorConfig): Promise<void> {
  const kube = await KubeClient.fromKubeconfig(cfg.kubeconfig);
  const identity = cfg.identity ?? `${hostname()}-${process.pid}`;
  logger.info(
    { namespace: cfg.namespace, leaderElection: cfg.leaderElection, identity, server: kube.server },
    'starting',
  );

  // The namespace holds the agent objects and the lease; create it if the installer did not.
  if (!(await kube.getOrUndefined(Builtin.Namespace, cfg.namespace))) {
    await kube.apply(Builtin.Namespace, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: cfg.namespace },
    });
    logger.info({ namespace: cfg.namespace }, 'created namespace');
  }
  await ensureNadCrd(kube, logger);
  const stopWaiting = new AbortController();
  const stopOnSignal = () => stopWaiting.abort();
  process.once('SIGTERM', stopOnSignal);
  process.once('SIGINT', stopOnSignal);
  await waitForClusterNetworkCrd(kube, logger, stopWaiting.signal);
  process.off('SIGTERM', stopOnSignal);
  process.off('SIGINT', stopOnSignal);
  if (stopWaiting.signal.aborted) return;

  const metricsRegistry = createMetricsRegistry();
  const metrics = createFrameworkMetrics(metricsRegistry);
  let server: MetricsServer | undefined;
  if (cfg.metricsPort >= 0) {
    try {
      server = await serveMetrics(metricsRegistry, cfg.metricsPort, cfg.metricsHost);
      logger.info({ port: server.port, host: cfg.metricsHost }, 'serving metrics on /metrics');
    } catch (err: unknown) {
      // Metrics are worth having, not worth refusing to run for.
      logger.error(
        { err, port: cfg.metricsPort },
        'cannot serve metrics (port in use?); set --metrics-port; continuing without',
      );
    }
  }

  // Every kind the operator reads, watched once; the framework shares these informers. They run
  // across leadership terms, as client-go's do, so a new leader starts from a warm cache.
  const informers = new InformerSet(kube, logger);
  const caches = operatorCaches(informers, cfg);
  informers.start();
  await informers.synced();
  const ctx: OperatorContext = {
    kube,
    config: cfg,
    logger,
    lock: new KeyedMutex(),
    metrics: createOperatorMetrics(metricsRegistry),
    caches,
    applied: new Map(),
    status: undefined as unknown as StatusWriter,
  };
  ctx.status = new StatusWriter(ctx, {
    statusOf: (cn, outcome) => statusFromCaches(ctx, cn, outcome),
    reconcile: async (cn) => {
      await reconcileClusterNetwork(ctx, cn, logger.child({ clusterNetwork: cn.metadata.name }));
    },
  });
  const stopStatus = ctx.status.start();
  await runOperator({
    informers,
    kube,
    registry: buildRegistry(ctx),
    logger,
    metrics,
    component: 'trellis-operator',
    leaderElection: cfg.leaderElection
      ? {
          namespace: cfg.namespace,
          name: cfg.leaseName,
          identity,
          leaseDurationSeconds: cfg.leaseDurationSeconds,
          renewDeadlineSeconds: cfg.renewDeadlineSeconds,
          retryPeriodSeconds: cfg.retryPeriodSeconds,
        }
      : false,
  });
  stopStatus();
  await informers.stop();
  await server?.close();
  await kube.close();
  logger.info('stopped');
}

main(config).catch((err: unknown) => {
  logger.fatal({ err }, 'operator failed');
  process.exit(1);
});
