// Prometheus metrics of IPAM on the default prom-client registry, so whichever program serves
// /metrics (agent, operator) exposes them. Created once per process.
import { Counter, Histogram, register } from 'prom-client';

function counter(name: string, help: string, labelNames: string[] = []): Counter {
  return (register.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, labelNames });
}

export const ipamMetrics = {
  allocations: counter('trellis_ipam_allocations_total', 'Addresses allocated', ['pool']),
  releases: counter('trellis_ipam_releases_total', 'Addresses released (DEL, GC, orphan reconciliation)', [
    'pool',
  ]),
  conflicts: counter(
    'trellis_ipam_conflicts_total',
    'Optimistic-concurrency conflicts (409) retried on IPBlock writes',
  ),
  borrowed: counter('trellis_ipam_borrowed_total', "Addresses borrowed from another node's block", ['pool']),
  exhausted: counter('trellis_ipam_exhausted_total', 'Allocations refused because the pool was exhausted', [
    'pool',
  ]),
  blocksClaimed: counter('trellis_ipam_blocks_claimed_total', 'Blocks claimed by this node', ['pool']),
  latency: ((register.getSingleMetric('trellis_ipam_allocation_duration_seconds') as Histogram | undefined) ??
    new Histogram({
      name: 'trellis_ipam_allocation_duration_seconds',
      help: 'Time to allocate the addresses of one attachment, API writes included',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    })) as Histogram,
};
