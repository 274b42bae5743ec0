// `trellis-uninstall`: the chart's pre-delete hook. `helm uninstall` deletes the operator, its RBAC
// and the chart's ClusterNetwork at once; the ClusterNetwork's finalizer then waits forever for an
// operator that is gone, and the agent DaemonSet stays on every node. Run before Helm deletes
// anything, this deletes the chart's ClusterNetworks and waits until the still-running operator has
// removed what they own (agents, RBAC, ConfigMap, NADs) and released the finalizer, then deletes
// the agents' NodeNetworkStatus reports.
// Settings: TRELLIS_CLUSTER_NETWORKS (comma-separated names), TRELLIS_UNINSTALL_TIMEOUT (seconds).
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterNetworkResource, NodeNetworkStatusResource } from '../src/api/group.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
import { KubeClient } from '../src/kube/client.ts';
import { ApiError } from '../src/kube/errors.ts';
import { createLogger } from '../src/log/logger.ts';

const log = createLogger('uninstall');

async function main(): Promise<number> {
  const names = (process.env.TRELLIS_CLUSTER_NETWORKS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const timeoutS = Number(process.env.TRELLIS_UNINSTALL_TIMEOUT ?? '240');
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
    process.stderr.write(
      `trellis-uninstall: TRELLIS_UNINSTALL_TIMEOUT must be a positive number of seconds\n`,
    );
    return 2;
  }
  const kube = await KubeClient.fromKubeconfig(process.env.KUBECONFIG || undefined);
  try {
    for (const name of names) {
      try {
        await kube.delete(ClusterNetworkResource, name);
        log.info({ clusterNetwork: name }, 'deleted; waiting for the operator to clean up');
      } catch (err: unknown) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
    }
    const deadline = Date.now() + timeoutS * 1000;
    for (;;) {
      const left: string[] = [];
      for (const name of names) if (await kube.getOrUndefined(ClusterNetworkResource, name)) left.push(name);
      if (left.length === 0) break;
      if (Date.now() > deadline) {
        log.error(
          { left },
          'ClusterNetworks still present: is the operator running? (kubectl get clusternetwork)',
        );
        return 1;
      }
      await sleep(500);
    }
    // The agents are gone with their DaemonSet; their reports would only say "not ready" forever.
    // IPBlocks stay: they are the IPAM state, and a reinstall adopts what a running pod still holds.
    const reports = await kube.listAll<NodeNetworkStatus>(NodeNetworkStatusResource);
    for (const r of reports.items) {
      if (!names.includes(r.status?.clusterNetwork ?? '')) continue;
      await kube.delete(NodeNetworkStatusResource, r.metadata.name).catch((err: unknown) => {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      });
    }
    log.info({ clusterNetworks: names }, 'cleaned up');
    return 0;
  } finally {
    await kube.close();
  }
}

process.exitCode = await main();
