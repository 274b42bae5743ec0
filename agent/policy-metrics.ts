// Prometheus metrics of the policy enforcer (default registry, served with the agent's others).
import { Counter, Gauge, Histogram } from 'prom-client';

export const policyGauges = {
  policies: new Gauge({ name: 'trellis_agent_policy_policies', help: 'NetworkPolicies known to the agent' }),
  rules: new Gauge({ name: 'trellis_agent_policy_rules', help: 'nftables rules programmed for policy' }),
  elements: new Gauge({
    name: 'trellis_agent_policy_set_elements',
    help: 'Elements in the policy sets and verdict maps',
  }),
  lastSync: new Gauge({
    name: 'trellis_agent_policy_last_sync_seconds',
    help: 'Duration of the last policy sync (compile and program)',
  }),
};

export const policySyncs = new Histogram({
  name: 'trellis_agent_policy_sync_seconds',
  help: 'Policy sync duration, by kind (full: whole table; diff: incremental)',
  labelNames: ['kind'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
});

export const policySyncErrors = new Counter({
  name: 'trellis_agent_policy_sync_errors_total',
  help: 'Policy syncs that failed to program nftables',
});
