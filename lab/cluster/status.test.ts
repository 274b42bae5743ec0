import { describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import type { NodeNetworkStatus } from '../../src/api/nodestatus.ts';
import { renderClusterStatus, summarizeStatus, type StatusInput } from './status.ts';

const ready = [{ type: 'Ready', status: 'True' }];
const node = (name: string, isReady = true) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  status: { conditions: [{ type: 'Ready', status: isReady ? 'True' : 'False' }] },
});
const agentPod = (n: string, isReady = true) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: `trellis-agent-${n}`, namespace: 'trellis-system' },
  spec: { nodeName: n },
  status: {
    phase: 'Running',
    conditions: isReady ? ready : [],
    containerStatuses: [{ ready: isReady, restartCount: 1, image: 'docker.io/trellis/agent:0.1.0' }],
  },
});
const report = (n: string, isReady = true) =>
  ({
    apiVersion: 'network.trellis.dev/v1alpha1',
    kind: 'NodeNetworkStatus',
    metadata: { name: n },
    status: {
      ready: isReady,
      backend: 'vxlan',
      peers: 2,
      conditions: isReady ? ready : [{ type: 'Ready', status: 'False', message: 'kernel lacks vxlan' }],
    },
  }) as unknown as NodeNetworkStatus;
const cn = (conditions: { type: string; status: string; reason?: string; message?: string }[]) =>
  ({
    apiVersion: 'network.trellis.dev/v1alpha1',
    kind: 'ClusterNetwork',
    metadata: { name: 'default' },
    status: {
      conditions,
      pools: [{ name: 'v4', cidr: '10.244.0.0/16', allocated: 6, capacity: 65536, blocks: 3 }],
    },
  }) as unknown as ClusterNetwork;

function healthy(): StatusInput {
  return {
    operators: [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'trellis-operator', namespace: 'trellis-system' },
        spec: { replicas: 1 },
        status: { readyReplicas: 1 },
      },
    ],
    operatorPods: [],
    agents: [
      {
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: { name: 'trellis-agent', namespace: 'trellis-system' },
        status: { desiredNumberScheduled: 2, numberReady: 2, updatedNumberScheduled: 2 },
      },
    ],
    agentPods: [agentPod('n1'), agentPod('n2')],
    clusterNetworks: [cn(ready)],
    reports: [report('n1'), report('n2')],
    nodes: [node('n2'), node('n1')],
  };
}

describe('trellis status', () => {
  it('is OK when operator, every agent and the ClusterNetwork are ready', () => {
    const r = summarizeStatus(healthy());
    expect(r.degraded).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.nodes.map((n) => [n.node, n.podReady, n.reportReady, n.restarts])).toEqual([
      ['n1', true, true, 1],
      ['n2', true, true, 1],
    ]);
    expect(renderClusterStatus(r, 'the lab')).toContain(
      'pool v4         10.244.0.0/16        6/65536 addresses in 3 blocks',
    );
  });

  it('names each degraded part and why', () => {
    const input = healthy();
    input.agentPods = [agentPod('n1'), agentPod('n2', false)];
    input.reports = [report('n1', false), report('n2')];
    input.agents[0]!.status = { desiredNumberScheduled: 2, numberReady: 1, updatedNumberScheduled: 2 };
    input.clusterNetworks = [
      cn([
        { type: 'Ready', status: 'False' },
        {
          type: 'Degraded',
          status: 'True',
          reason: 'PoolUnusable',
          message: 'spec.pools[0].nodeSelector matches no node',
        },
      ]),
    ];
    const r = summarizeStatus(input);
    expect(r.ok).toBe(false);
    expect(r.degraded).toEqual([
      'agents: trellis-system/trellis-agent 1/2 ready',
      'node n1: agent reports not ready: kernel lacks vxlan',
      'node n2: agent pod trellis-agent-n2 not ready',
      'ClusterNetwork default Degraded: PoolUnusable: spec.pools[0].nodeSelector matches no node',
    ]);
  });

  it('says when Trellis is not installed at all', () => {
    const r = summarizeStatus({
      ...healthy(),
      operators: [],
      agents: [],
      agentPods: [],
      clusterNetworks: [],
      reports: [],
    });
    expect(r.degraded).toEqual([
      'operator: no Deployment labelled app.kubernetes.io/name=trellis-operator (is Trellis installed?)',
      'no ClusterNetwork: create one (kubectl apply, or the chart with clusterNetwork.enabled=true)',
    ]);
  });
});
