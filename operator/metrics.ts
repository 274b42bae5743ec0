// Operator-specific metrics next to the framework's: objects applied and pruned, drift repaired,
// and reconcile results per ClusterNetwork outcome.
import { Counter, type Registry } from 'prom-client';

export interface OperatorMetrics {
  reconciled(outcome: 'ready' | 'progressing' | 'unrealisable' | 'apply-failed'): void;
  applied(kind: string): void;
  pruned(kind: string): void;
  driftCorrected(kind: string): void;
}

export function createOperatorMetrics(registry: Registry): OperatorMetrics {
  const reconciles = new Counter({
    name: 'trellis_operator_clusternetwork_reconciles_total',
    help: 'ClusterNetwork reconciles by result (ready, progressing, unrealisable, apply-failed).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const applied = new Counter({
    name: 'trellis_operator_objects_applied_total',
    help: 'Rendered objects sent with server-side apply, by kind.',
    labelNames: ['kind'],
    registers: [registry],
  });
  const pruned = new Counter({
    name: 'trellis_operator_objects_pruned_total',
    help: 'Owned objects deleted because the ClusterNetwork no longer renders them (or was deleted), by kind.',
    labelNames: ['kind'],
    registers: [registry],
  });
  const drift = new Counter({
    name: 'trellis_operator_drift_corrected_total',
    help: 'Owned objects re-applied after someone changed or deleted them, by kind.',
    labelNames: ['kind'],
    registers: [registry],
  });
  return {
    reconciled: (outcome) => reconciles.inc({ outcome }),
    applied: (kind) => applied.inc({ kind }),
    pruned: (kind) => pruned.inc({ kind }),
    driftCorrected: (kind) => drift.inc({ kind }),
  };
}
