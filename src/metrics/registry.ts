// One Prometheus registry per process, with the default Node process metrics. Modules register
// their own metrics on it; src/metrics/server.ts serves it.
import { Registry, collectDefaultMetrics } from 'prom-client';

export function createMetricsRegistry(prefix = 'trellis_'): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}
