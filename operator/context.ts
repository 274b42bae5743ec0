// What every part of the operator needs: the API client, settings, logger, metrics, the
// per-ClusterNetwork lock, the caches and the status writer. Built once in main.ts and passed down; no module-level state.
import type { KubeClient } from '../src/kube/client.ts';
import type { Logger } from '../src/log/logger.ts';
import type { OperatorConfig } from './config.ts';
import type { KeyedMutex } from '../src/util/keyed-mutex.ts';
import type { OperatorCaches } from './cache.ts';
import type { OperatorMetrics } from './metrics.ts';
import type { StatusWriter } from './status-writer.ts';

export interface OperatorContext {
  kube: KubeClient;
  config: OperatorConfig;
  logger: Logger;
  lock: KeyedMutex;
  metrics: OperatorMetrics;
  /** Every kind the operator reads, watched once (operator/cache.ts). */
  caches: OperatorCaches;
  /** resourceVersion our last apply of each rendered object returned (objectId -> rv), so drift
   * repair can tell the echo of its own write from a change; compared only for equality. */
  applied: Map<string, string>;
  /** The one writer of ClusterNetwork status (operator/status-writer.ts). */
  status: StatusWriter;
}
