// What every part of the operator needs: the API client, settings, logger, metrics and the
// per-ClusterNetwork lock. Built once in main.ts and passed down; no module-level state.
import type { KubeClient } from '../src/kube/client.ts';
import type { Logger } from '../src/log/logger.ts';
import type { OperatorConfig } from './config.ts';
import type { KeyedMutex } from '../src/util/keyed-mutex.ts';
import type { OperatorMetrics } from './metrics.ts';

export interface OperatorContext {
  kube: KubeClient;
  config: OperatorConfig;
  logger: Logger;
  lock: KeyedMutex;
  metrics: OperatorMetrics;
}
