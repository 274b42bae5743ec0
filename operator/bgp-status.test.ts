// GIVEN NodeNetworkStatus objects of a bgp ClusterNetwork WHEN a session is not established
// THEN the ClusterNetwork is Degraded with a message naming the node and each such peer with its reason.
import { describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import type { BgpSession, NodeNetworkStatus } from '../src/api/nodestatus.ts';
import { bgpSessionProblems } from './bgp-status.ts';
import { computeStatus } from './status.ts';

function nns(
  name: string,
  sessions: BgpSession[] | undefined,
  backend: 'bgp' | 'vxlan' = 'bgp',
): NodeNetworkStatus {
  return {
    apiVersion: 'network.trellis.dev/v1alpha1',
    kind: 'NodeNetworkStatus',
    metadata: { name },
    status: {
      clusterNetwork: 'default',
      ready: true,
      nodeIP: '198.18.1.11',
      backend,
      kernel: { vxlan: true, bridge: true, macvlan: true, ipvlan: false, wireguard: false, nftables: true },
      lastHeartbeatTime: '2026-01-01T00:00:00Z',
      ...(sessions ? { bgp: { established: '', sessions } } : {}),
    },
  };
}

const up: BgpSession = {
  name: 'peer_198_18_1_1',
  peerAddress: '198.18.1.1',
  state: 'Established',
  established: true,
};
const wrongAs: BgpSession = {
  name: 'peer_198_18_9_9',
  peerAddress: '198.18.9.9',
  state: 'Idle',
  established: false,
  reason: 'Received: Bad peer AS',
};

describe('bgpSessionProblems', () => {
  it('names every node with a session down and each such peer with its reason', () => {
    const problems = bgpSessionProblems('default', new Set(['a', 'b', 'c', 'd']), [
      nns('a', [up, wrongAs]),
      nns('b', [wrongAs]),
      nns('c', []),
      nns('d', [up]),
    ]);
    expect(problems).toEqual([
      'node a has BGP sessions not established: 198.18.9.9 (Idle: Received: Bad peer AS)',
      'node b has no established BGP session: 198.18.9.9 (Idle: Received: Bad peer AS)',
      'node c has no established BGP session: no peer configured for it',
    ]);
  });

  it('ignores other ClusterNetworks, other backends, nodes not desired and nodes not reporting yet', () => {
    expect(
      bgpSessionProblems('default', new Set(['a', 'b']), [
        nns('a', [wrongAs], 'vxlan'),
        nns('b', undefined),
        nns('z', [wrongAs]),
      ]),
    ).toEqual([]);
  });

  it('turns the problems into Degraded=True (reason BGPSessionsDown) while Ready still counts agents', () => {
    const cn = {
      metadata: { name: 'default', generation: 1 },
      spec: { pools: [] },
    } as unknown as ClusterNetwork;
    const s = computeStatus({
      cn,
      findings: [],
      desired: 2,
      ready: 2,
      pools: [],
      bgpProblems: ['node b has no established BGP session: 198.18.9.9 (Idle)'],
      now: new Date(),
    });
    const degraded = s.conditions?.find((c) => c.type === 'Degraded');
    expect(degraded).toMatchObject({ status: 'True', reason: 'BGPSessionsDown' });
    expect(degraded?.message).toContain('node b');
    expect(s.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });
});
