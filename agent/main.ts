// The Trellis node agent. Startup order matters for pods: probe the kernel, program the node,
// serve the CNI socket, install the plugin, and only then install the conflist, so a runtime never
// finds our config before we can answer. Shutdown removes the conflist only when no other agent
// runs on the node, and never touches running pods (restart safety: everything is reconciled).
import { KubeClient } from '../src/kube/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { probeKernelFeatures, missingFeatures } from '../src/dataplane/kernel.ts';
import { readFileSync } from 'node:fs';
import { useSpawner } from '../src/dataplane/exec.ts';
import { createNodeIpam } from '../src/ipam/index.ts';
import { InformerSet } from '../src/kube/informers.ts';
import type { WireRequest } from '../src/cni/wire.ts';
import { ConfigError, loadConfig } from './config.ts';
import {
  installConflist,
  installPlugin,
  removeConflist,
  removeNodeFiles,
  uninstallRequested,
  watchUninstall,
} from './install.ts';
import { serveCni } from './server.ts';
import { CniService } from './cni.ts';
import { NodeNetwork } from './network.ts';
import { StatusReporter } from './status.ts';
import { debounced, onRelevantChange } from './watch.ts';
import { agentCaches } from './caches.ts';
import { releaseOrphans } from './orphans.ts';
import { PodCache } from './pods.ts';
import { Multinet, hostInterfaces } from './multinet.ts';
import { MultiPolicyEnforcer } from './multinet-policy.ts';
import { relevantBlock, relevantNode, relevantPeerStatus } from './plan.ts';
import { cniLatency, cniRequests, markReady, serveMetrics } from './metrics.ts';
import { PolicyEnforcer, policyEnabled } from './policy.ts';
import { PolicyStatusReporter } from './policy-status.ts';

/** How long a stopping agent waits for CNI requests in flight (below the pod's 30 s grace period). */
const DRAIN_MS = 20_000;

/** The `name` of the conflist this agent installs: the pod network it serves. */
function conflistNetworkName(file: string): string | undefined {
  try {
    const name = (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (err: unknown) {
    if (err instanceof ConfigError) {
      process.stderr.write(`trellis-agent: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger('agent', cfg.logLevel).child({ node: cfg.nodeName });
  const kube = await KubeClient.fromKubeconfig(cfg.kubeconfig);
  const abort = new AbortController();
  // Every kind the agent reads, watched once and read from memory (see docs/watch-cache.md).
  const informers = new InformerSet(kube, log.child({ part: 'cache' }));
  const caches = agentCaches(informers, cfg.clusterNetwork);
  informers.start();
  const uninstall = watchUninstall(caches.clusterNetwork, cfg.clusterNetwork, log.child({ part: 'install' }));

  const kernel = await probeKernelFeatures();
  const missing = missingFeatures(kernel);
  log.info(
    { kernel, missing },
    missing.length ? `kernel lacks: ${missing.join(', ')}` : 'kernel has every probed feature',
  );

  // Data-plane commands go through a small long-lived spawner: forking this process per command
  // would cost ~10 ms each (measured in docs/cni-shim.md).
  const stopSpawner = useSpawner();
  const network = new NodeNetwork(kube, caches, cfg, kernel, log.child({ part: 'network' }));
  const reporter = new StatusReporter(
    kube,
    cfg.nodeName,
    cfg.clusterNetwork,
    kernel,
    log.child({ part: 'status' }),
    () => hostInterfaces(cfg.devicePrefix),
  );
  const ipam = createNodeIpam({
    kube,
    node: cfg.nodeName,
    clusterNetwork: cfg.clusterNetwork,
    logger: log.child({ part: 'ipam' }),
    // pools and node labels from the watches above, not a GET on ADD's path
    cached: {
      clusterNetwork: () => caches.clusterNetwork.get(cfg.clusterNetwork)?.spec,
      nodeLabels: () => {
        const node = caches.nodes.get(cfg.nodeName);
        return node ? (node.metadata.labels ?? {}) : undefined;
      },
    },
  });
  // NetworkPolicy: the previous agent's table keeps enforcing until the first full sync replaces it
  const policy = policyEnabled()
    ? new PolicyEnforcer({ caches, node: cfg.nodeName, log: log.child({ part: 'policy' }) })
    : undefined;
  const policyStatus = new PolicyStatusReporter(kube, cfg.nodeName, log.child({ part: 'policy' }));
  policy?.onSync((s) => policyStatus.update(s));
  policy?.start();
  const pods = new PodCache(kube, caches.pods, cfg.nodeName);
  const multinet = new Multinet({
    kube,
    pods,
    binDirs: [cfg.cniBinDir],
    ...(cfg.nadConfDir ? { nadConfDir: cfg.nadConfDir } : {}),
    stateDir: cfg.stateDir,
    socketPath: cfg.socketPath,
    node: cfg.nodeName,
    log: log.child({ part: 'multinet' }),
  });
  multinet.start();
  const multiPolicy = new MultiPolicyEnforcer({
    caches,
    log: log.child({ part: 'multinet-policy' }),
    attachments: () => multinet.attachments(),
  });
  multiPolicy.start();
  multinet.usePolicy(multiPolicy);
  const cni = new CniService({
    multinet,
    kube,
    pods,
    ipam,
    network,
    devicePrefix: cfg.devicePrefix,
    networkName: conflistNetworkName(cfg.cniConfigFile),
    gcGraceMs: cfg.gcGraceSeconds * 1000,
    log: log.child({ part: 'cni' }),
    ...(policy ? { policy } : {}),
  });

  const report = debounced(() => reporter.report(network.state), 200, log);
  network.onChange(report);
  const reconcile = debounced(() => network.reconcile(), 100, log);

  // Program the node before serving: retry until the first pass succeeds (API may not be up yet).
  for (let attempt = 1; !abort.signal.aborted; attempt++) {
    try {
      await network.reconcile();
      break;
    } catch (err: unknown) {
      log.warn({ err: String(err), attempt }, 'first reconcile failed; retrying');
      await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 5000)));
    }
  }
  report();

  const server = await serveCni(
    cfg.socketPath,
    async (req: WireRequest, timing) => {
      const stop = cniLatency.startTimer({ command: req.env?.CNI_COMMAND ?? 'unknown' });
      const answer = await cni.handle(req, timing);
      stop();
      cniRequests.inc({
        command: req.env?.CNI_COMMAND ?? 'unknown',
        result: answer.exitCode === 0 ? 'ok' : 'error',
      });
      return answer;
    },
    log,
  );
  const metrics = serveMetrics(cfg.metricsPort, cfg.metricsAddress);

  installPlugin(cfg.cniBinary, cfg.cniBinDir, log);
  installConflist(cfg.cniConfigFile, cfg.cniConfDir, cfg.socketPath, log);
  markReady();

  const watches = [
    onRelevantChange(caches.clusterNetwork, reconcile, (o) => String(o.metadata.generation)),
    onRelevantChange(caches.nodes, reconcile, relevantNode),
    onRelevantChange(caches.blocks, reconcile, relevantBlock),
    onRelevantChange(caches.statuses, reconcile, relevantPeerStatus),
  ];
  const resync = setInterval(reconcile, 30_000);
  // BGP session state is polled from the speaker (it has no push channel we could watch).
  const bgpPoll = setInterval(() => {
    network
      .refreshBgp()
      .catch((err: unknown) => log.warn({ err: String(err) }, 'reading BGP sessions failed'));
  }, 2000);
  const heartbeat = setInterval(report, cfg.heartbeatSeconds * 1000);
  const orphanTimer =
    cfg.reconcileSeconds > 0
      ? setInterval(() => {
          releaseOrphans(pods, ipam, cfg.orphanGraceSeconds * 1000, log).catch((err: unknown) =>
            log.warn({ err: String(err) }, 'orphan reconciliation failed'),
          );
        }, cfg.reconcileSeconds * 1000)
      : undefined;
  log.info({ socket: cfg.socketPath, clusterNetwork: cfg.clusterNetwork }, 'agent running');

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    abort.abort();
    clearInterval(resync);
    clearInterval(bgpPoll);
    clearInterval(heartbeat);
    if (orphanTimer) clearInterval(orphanTimer);
    policyStatus.close();
    metrics?.close();
    for (const unsubscribe of watches) unsubscribe();
    const cleanup = (
      uninstall.seen() ? Promise.resolve(true) : uninstallRequested(kube, cfg.clusterNetwork, log)
    )
      .then(async (gone) => {
        if (!gone) return;
        removeConflist(cfg.cniConfDir, cfg.cniConfigFile, log);
        // uninstalled for good: node-wide programming, the plugin and the agent's state go too
        await network.teardown();
        removeNodeFiles(cfg.cniBinDir, cfg.stateDir, log);
      })
      .catch((err: unknown) => log.warn({ err: String(err) }, 'uninstall clean-up failed; node left as is'))
      .finally(() => uninstall.stop());
    // Drain: requests in flight finish (or an ADD rolls back) before the process exits; new
    // connections are refused, and the plugin answers those with code 11 (try again).
    void server
      .close(DRAIN_MS)
      // The policy enforcer stops after the drain: an ADD in flight may still wait for it.
      .then(() =>
        Promise.allSettled([informers.stop(), cleanup, policy?.stop(), multinet.stop(), multiPolicy.stop()]),
      )
      .then(() => kube.close())
      .finally(() => {
        stopSpawner();
        process.exit(0);
      });
    setTimeout(() => process.exit(0), DRAIN_MS + 3000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`trellis-agent: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
