// findUnrealisable: specs that pass admission but cannot work on the given nodes, each reported
// with the field to fix.
import { describe, expect, it } from 'vitest';
import type { ClusterNetwork, ClusterNetworkSpec } from '../api/clusternetwork.ts';
import type { KubeObject } from '../kube/object.ts';
import { findUnrealisable, UNDERLAY_MTU_ANNOTATION } from './realisable.ts';

function cn(spec: Partial<ClusterNetworkSpec>): ClusterNetwork {
  return {
    apiVersion: 'network.trellis.dev/v1alpha1',
    kind: 'ClusterNetwork',
    metadata: { name: 'default' },
    spec: { pools: [{ name: 'v4', cidr: '10.244.0.0/16' }], backend: { mode: 'vxlan' }, ...spec },
  };
}

function node(
  name: string,
  labels: Record<string, string> = {},
  annotations?: Record<string, string>,
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels }, annotations },
  };
}

const nodes = [node('n1', { zone: 'a' }), node('n2', { zone: 'a' }), node('n3', { zone: 'b' })];

describe('findUnrealisable', () => {
  it('finds nothing wrong with a plain dual-stack spec', () => {
    const spec = cn({
      pools: [
        { name: 'v4', cidr: '10.244.0.0/16' },
        { name: 'v6', cidr: 'fd00:10:244::/56' },
      ],
    });
    expect(findUnrealisable(spec, nodes)).toEqual([]);
    expect(findUnrealisable(spec, [])).toEqual([]);
  });

  it('names a pool whose nodeSelector matches no node', () => {
    const spec = cn({
      pools: [
        { name: 'v4', cidr: '10.244.0.0/16' },
        { name: 'gpu', cidr: '10.245.0.0/16', nodeSelector: { matchLabels: { gpu: 'true' } } },
      ],
    });
    expect(findUnrealisable(spec, nodes)).toEqual([
      {
        field: 'spec.pools[1].nodeSelector',
        message: expect.stringContaining('matches none of the 3 node(s)'),
      },
    ]);
  });

  it('names a selector that cannot be used instead of guessing what it selects', () => {
    const spec = cn({
      pools: [
        { name: 'v4', cidr: '10.244.0.0/16' },
        {
          name: 'odd',
          cidr: '10.245.0.0/16',
          nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'Gt', values: ['1'] }] },
        },
      ],
    });
    expect(findUnrealisable(spec, nodes)).toContainEqual({
      field: 'spec.pools[1].nodeSelector.matchExpressions[0].operator',
      message: 'unknown operator "Gt": use one of In, NotIn, Exists, DoesNotExist',
    });
  });

  it('understands matchExpressions', () => {
    const spec = cn({
      pools: [
        {
          name: 'a',
          cidr: '10.244.0.0/16',
          nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
        },
        {
          name: 'b',
          cidr: '10.245.0.0/16',
          nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] },
        },
      ],
    });
    expect(findUnrealisable(spec, nodes)).toEqual([]);
  });

  it('names a node that no pool selects', () => {
    const spec = cn({
      pools: [{ name: 'a', cidr: '10.244.0.0/16', nodeSelector: { matchLabels: { zone: 'a' } } }],
    });
    expect(findUnrealisable(spec, nodes)).toEqual([
      {
        field: 'spec.pools',
        message: expect.stringContaining('node n3 runs the agent but no pool selects it'),
      },
    ]);
    // ...unless the agent does not run there.
    const agentOnA = cn({ ...spec.spec, agent: { nodeSelector: { zone: 'a' } } });
    expect(findUnrealisable(agentOnA, nodes)).toEqual([]);
  });

  it('names a pool with fewer blocks than the nodes that use it', () => {
    const spec = cn({ pools: [{ name: 'small', cidr: '10.244.0.0/25', blockSize: 26 }] });
    expect(findUnrealisable(spec, nodes)).toEqual([
      {
        field: 'spec.pools[0].blockSize',
        message: expect.stringContaining('holds only 2 block(s) of /26 but 3 nodes'),
      },
    ]);
    expect(findUnrealisable(spec, nodes.slice(0, 2))).toEqual([]);
  });

  it('names an MTU too big for VXLAN over the underlay, with the largest that fits', () => {
    expect(findUnrealisable(cn({ backend: { mode: 'vxlan', mtu: 1500 } }), nodes)).toEqual([
      { field: 'spec.backend.mtu', message: expect.stringContaining('set spec.backend.mtu to at most 1450') },
    ]);
    expect(findUnrealisable(cn({ backend: { mode: 'vxlan', mtu: 1450 } }), nodes)).toEqual([]);
    expect(findUnrealisable(cn({ backend: { mode: 'host-gw', mtu: 1500 } }), nodes)).toEqual([]);
    // A jumbo-frame underlay, stated by option or by the nodes themselves (the smallest counts).
    expect(
      findUnrealisable(cn({ backend: { mode: 'vxlan', mtu: 8950 } }), nodes, { underlayMtu: 9000 }),
    ).toEqual([]);
    const jumbo = [
      node('j1', {}, { [UNDERLAY_MTU_ANNOTATION]: '9000' }),
      node('j2', {}, { [UNDERLAY_MTU_ANNOTATION]: '8000' }),
    ];
    expect(findUnrealisable(cn({ backend: { mode: 'vxlan', mtu: 8950 } }), jumbo)).toEqual([
      { field: 'spec.backend.mtu', message: expect.stringContaining('underlay MTU 8000') },
    ]);
  });

  it('names attachment pool addresses outside the CIDR and a reversed range', () => {
    const spec = cn({
      attachments: [
        {
          name: 'sig',
          type: 'macvlan',
          master: 'eth1',
          pool: {
            cidr: '192.168.10.0/24',
            rangeStart: '192.168.10.200',
            rangeEnd: '192.168.10.100',
            gateway: '192.168.11.1',
            exclude: ['10.0.0.1'],
          },
        },
      ],
    });
    expect(findUnrealisable(spec, nodes)).toEqual([
      {
        field: 'spec.attachments[0].pool.gateway',
        message: 'attachment sig: gateway 192.168.11.1 is outside 192.168.10.0/24',
      },
      {
        field: 'spec.attachments[0].pool.rangeStart',
        message: 'attachment sig: rangeStart 192.168.10.200 is after rangeEnd 192.168.10.100',
      },
      {
        field: 'spec.attachments[0].pool.exclude[0]',
        message: 'attachment sig: exclude 10.0.0.1 is outside 192.168.10.0/24',
      },
    ]);
  });

  it('names IPv6 attachment ranges outside their CIDR and an attachment pool overlapping a pod pool', () => {
    const spec = cn({
      attachments: [
        { name: 'v6', type: 'bridge', pool: { cidr: 'fd00:1::/64', rangeStart: 'fd00:2::10' } },
        { name: 'clash', type: 'bridge', pool: { cidr: '10.244.5.0/24' } },
      ],
    });
    expect(findUnrealisable(spec, nodes)).toEqual([
      {
        field: 'spec.attachments[0].pool.rangeStart',
        message: 'attachment v6: rangeStart fd00:2::10 is outside fd00:1::/64',
      },
      {
        field: 'spec.attachments[1].pool.cidr',
        message: expect.stringContaining('overlaps pod pool v4 (10.244.0.0/16)'),
      },
    ]);
  });

  it('re-checks what admission should have caught, for objects stored without it', () => {
    const spec = cn({
      pools: [
        { name: 'a', cidr: '10.244.0.0/16' },
        { name: 'b', cidr: '10.244.1.0/24' },
        { name: 'c', cidr: 'not-a-cidr' },
      ],
      attachments: [{ name: 'v', type: 'vlan' }],
    });
    expect(findUnrealisable(spec, []).map((f) => f.field)).toEqual([
      'spec.pools[2].cidr',
      'spec.pools[1].cidr',
      'spec.attachments[0].master',
      'spec.attachments[0].vlanId',
    ]);
  });
});

describe('backend.bgp peer passwords', () => {
  it('names a password Secret outside the agent namespace, which the agent may not read', () => {
    const c = cn({
      backend: {
        mode: 'bgp',
        bgp: {
          asNumber: 64512,
          peers: [
            { address: '198.19.1.1', asNumber: 65001, password: { secretKeyRef: { name: 'ok', key: 'pw' } } },
            {
              address: '198.19.2.1',
              asNumber: 65002,
              password: { secretKeyRef: { name: 'far', key: 'pw', namespace: 'kube-system' } },
            },
          ],
        },
      },
    });
    const findings = findUnrealisable(c, [node('n1')], { agentNamespace: 'trellis-system' });
    expect(findings).toEqual([
      {
        field: 'spec.backend.bgp.peers[1].password.secretKeyRef.namespace',
        message:
          'the agent reads peer passwords only from Secrets in its own namespace trellis-system: create Secret far there and set namespace to trellis-system or leave it unset (not kube-system)',
      },
    ]);
  });
});
