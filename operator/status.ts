// ClusterNetwork status as API conventions (and kstatus, Argo CD, Flux) expect it: observedGeneration,
// Ready / Progressing / Degraded conditions with reasons and messages, node readiness counts and pool
// usage. Pure: the reconcile gathers the facts, this decides what they mean.
import type {
  ClusterNetwork,
  ClusterNetworkStatus,
  Condition,
  PoolUsage,
} from '../src/api/clusternetwork.ts';

export interface StatusFacts {
  cn: ClusterNetwork;
  /** What findUnrealisable reported: each names the field to fix. */
  findings: { field: string; message: string }[];
  /** Set when applying the rendered objects failed (a retry is coming). */
  applyError?: string;
  /** Nodes the agent DaemonSet selects. */
  desired: number;
  /** Of those, nodes whose NodeNetworkStatus says ready for this ClusterNetwork. */
  ready: number;
  pools: PoolUsage[];
  /** Nodes with a BGP session not established (or none), each naming node and peers (bgp-status.ts). */
  bgpProblems?: string[];
  now: Date;
}

type Cond = Pick<Condition, 'type' | 'status' | 'reason' | 'message'>;

export function computeStatus(f: StatusFacts): ClusterNetworkStatus {
  const generation = f.cn.metadata.generation;
  let conds: Cond[];
  if (f.findings.length) {
    const message = f.findings.map((x) => `${x.field}: ${x.message}`).join('; ');
    conds = [
      {
        type: 'Ready',
        status: 'False',
        reason: 'Unrealisable',
        message: `cannot be realised on this cluster: ${message}`,
      },
      {
        type: 'Progressing',
        status: 'False',
        reason: 'Unrealisable',
        message: 'waiting for the spec (or the nodes) to change',
      },
      { type: 'Degraded', status: 'True', reason: 'Unrealisable', message },
    ];
  } else if (f.applyError) {
    conds = [
      {
        type: 'Ready',
        status: 'False',
        reason: 'ApplyFailed',
        message: `applying the rendered objects failed: ${f.applyError}`,
      },
      {
        type: 'Progressing',
        status: 'True',
        reason: 'Retrying',
        message: 'will retry applying the rendered objects',
      },
      { type: 'Degraded', status: 'True', reason: 'ApplyFailed', message: f.applyError },
    ];
  } else if (f.ready >= f.desired) {
    const message =
      f.desired === 0
        ? 'all objects applied; no node matches the agent nodeSelector yet'
        : `all objects applied; agents ready on ${f.ready}/${f.desired} nodes`;
    conds = [
      { type: 'Ready', status: 'True', reason: 'AgentsReady', message },
      { type: 'Progressing', status: 'False', reason: 'Complete', message },
      { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no problems found' },
    ];
  } else {
    const message = `agents ready on ${f.ready}/${f.desired} nodes`;
    conds = [
      { type: 'Ready', status: 'False', reason: 'AgentsNotReady', message },
      { type: 'Progressing', status: 'True', reason: 'RollingOut', message },
      { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no problems found' },
    ];
  }
  if (f.bgpProblems?.length && !f.findings.length && !f.applyError) {
    const message = f.bgpProblems.join('; ');
    conds = conds.map((c) =>
      c.type === 'Degraded' ? { ...c, status: 'True', reason: 'BGPSessionsDown', message } : c,
    );
  }
  const previous = f.cn.status?.conditions ?? [];
  return {
    observedGeneration: generation,
    conditions: conds.map((c) => withTransition(c, previous, f.now, generation)),
    nodes: { desired: f.desired, ready: f.ready },
    nodesReady: `${f.ready}/${f.desired}`,
    poolCount: f.cn.spec?.pools?.length ?? 0,
    pools: f.pools,
  };
}

/** Keeps lastTransitionTime when the condition's status did not change. */
function withTransition(
  c: Cond,
  previous: Condition[],
  now: Date,
  generation: number | undefined,
): Condition {
  const old = previous.find((p) => p.type === c.type);
  const lastTransitionTime =
    old && old.status === c.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const out: Condition = { ...c, lastTransitionTime };
  if (generation !== undefined) out.observedGeneration = generation;
  return out;
}
