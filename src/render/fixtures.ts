// Test data only (the render unit tests and the dry-run integration test, never code that runs):
// a dual-stack ClusterNetwork with one attachment of each type, so every template renders.
import type { ClusterNetwork } from '../api/clusternetwork.ts';

export function sampleClusterNetwork(
  name = 'default',
  spec: Partial<ClusterNetwork['spec']> = {},
): ClusterNetwork {
  return {
    apiVersion: 'network.trellis.dev/v1alpha1',
    kind: 'ClusterNetwork',
    metadata: { name },
    spec: {
      pools: [
        { name: 'v4', cidr: '10.244.0.0/16' },
        { name: 'v6', cidr: 'fd00:10:244::/56' },
      ],
      backend: { mode: 'vxlan', vni: 4096, port: 4789 },
      masquerade: true,
      attachments: [
        {
          name: 'sig-net',
          type: 'macvlan',
          master: 'eth1',
          pool: { cidr: '192.168.10.0/24', gateway: '192.168.10.1' },
        },
        {
          name: 'media-net',
          namespace: 'media',
          type: 'vlan',
          master: 'eth2',
          vlanId: 100,
          mtu: 1400,
          pool: { cidr: '192.168.20.0/24' },
        },
        { name: 'lan', type: 'bridge', pool: { cidr: '192.168.30.0/24' } },
        { name: 'fast', type: 'host-device', master: 'ens5f0' },
      ],
      ...spec,
    },
  };
}
