// The operator framework's metrics: reconcile cycles by outcome, handler durations, leadership.
// The framework calls these; it never needs to know about HTTP or prom-client beyond this file.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type CycleOutcome = 'success' | 'retry' | 'failure' | 'idle' | 'error';

export interface FrameworkMetrics {
  cycle(resource: string, outcome: CycleOutcome): void;
  handler(
    resource: string,
    handler: string,
    outcome: 'success' | 'temporary' | 'permanent',
    seconds: number,
  ): void;
  leader(isLeader: boolean): void;
}

export function createFrameworkMetrics(registry: Registry, prefix = 'trellis_operator_'): FrameworkMetrics {
  const cycles = new Counter({
    name: `${prefix}reconcile_total`,
    help: 'Processing cycles by resource and outcome (success, retry, failure, idle, error).',
    labelNames: ['resource', 'outcome'],
    registers: [registry],
  });
  const durations = new Histogram({
    name: `${prefix}handler_duration_seconds`,
    help: 'Handler run time by resource, handler id and outcome.',
    labelNames: ['resource', 'handler', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const leader = new Gauge({
    name: `${prefix}leader`,
    help: '1 while this process holds the leader lease (or runs without leader election), else 0.',
    registers: [registry],
  });
  leader.set(0);
  return {
    cycle: (resource, outcome) => cycles.inc({ resource, outcome }),
    handler: (resource, handler, outcome, seconds) =>
      durations.observe({ resource, handler, outcome }, seconds),
    leader: (isLeader) => leader.set(isLeader ? 1 : 0),
  };
}

/** Metrics that go nowhere, for tests and embedded use. */
export const noMetrics: FrameworkMetrics = { cycle: () => {}, handler: () => {}, leader: () => {} };
