// backend.mode bgp at admission, against the real kube-apiserver: every bad BGP section is
// rejected with 422 and a message naming the field; a valid one is accepted with its defaults;
// NodeNetworkStatus carries BGP sessions and shows them in the BGP printer column.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import { API_VERSION, ClusterNetworkResource, NodeNetworkStatusResource } from '../../src/api/group.ts';
import type { NodeNetworkStatus } from '../../src/api/nodestatus.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import { clusterNetworkObject, rejection } from '../support/admission.ts';
import { adminClient, uniqueName } from '../support/kube.ts';

let kube: KubeClient;
const created: string[] = [];

beforeAll(async () => {
  kube = await adminClient();
  await installCrds(kube);
});

afterAll(async () => {
  for (const name of created) await kube.delete(ClusterNetworkResource, name);
  await kube.close();
});

const pools = [{ name: 'v4', cidr: '10.244.0.0/16' }];
const tor = { address: '198.18.1.1', asNumber: 65101 };

const clusterNetwork = (backend: unknown): ClusterNetwork => clusterNetworkObject({ pools, backend }, 'bgp');
const rejected = (backend: unknown): Promise<string> => rejection(kube, clusterNetwork(backend), created);

describe('ClusterNetwork backend.bgp admission (schema + CEL)', () => {
  const cases: { what: string; backend: unknown; message: RegExp[] }[] = [
    {
      what: 'mode bgp without a bgp section',
      backend: { mode: 'bgp' },
      message: [/spec\.backend\.bgp/, /backend\.bgp .* is required when backend\.mode is bgp/],
    },
    {
      what: 'a bgp section with mode vxlan',
      backend: { mode: 'vxlan', bgp: { asNumber: 64512 } },
      message: [/spec\.backend\.bgp/, /applies only when backend\.mode is bgp/],
    },
    {
      what: 'a cluster AS of 0',
      backend: { mode: 'bgp', bgp: { asNumber: 0 } },
      message: [/spec\.backend\.bgp\.asNumber/, /greater than or equal to 1/],
    },
    {
      what: 'a cluster AS above 4294967295',
      backend: { mode: 'bgp', bgp: { asNumber: 4294967296 } },
      message: [/spec\.backend\.bgp\.asNumber/, /less than or equal to 4294967295/],
    },
    {
      what: 'a bgp section without asNumber',
      backend: { mode: 'bgp', bgp: { peers: [tor] } },
      message: [/spec\.backend\.bgp\.asNumber/, /Required value/],
    },
    {
      what: 'a peer AS of 0',
      backend: { mode: 'bgp', bgp: { asNumber: 64512, peers: [{ address: '198.18.1.1', asNumber: 0 }] } },
      message: [/spec\.backend\.bgp\.peers\[0\]\.asNumber/, /greater than or equal to 1/],
    },
    {
      what: 'a peer address that is not an IP',
      backend: { mode: 'bgp', bgp: { asNumber: 64512, peers: [{ address: 'tor-1', asNumber: 65101 }] } },
      message: [/spec\.backend\.bgp\.peers\[0\]\.address/, /peer address tor-1 is not an IP address/],
    },
    {
      what: 'duplicate peers',
      backend: { mode: 'bgp', bgp: { asNumber: 64512, peers: [tor, { ...tor, asNumber: 65102 }] } },
      message: [/spec\.backend\.bgp\.peers/, /peer addresses must be unique/],
    },
    {
      what: 'no mesh and no peers',
      backend: { mode: 'bgp', bgp: { asNumber: 64512, nodeToNodeMesh: false } },
      message: [/spec\.backend\.bgp\.peers/, /with nodeToNodeMesh false, give at least one entry in peers/],
    },
    {
      what: 'a graceful-restart time of 0',
      backend: { mode: 'bgp', bgp: { asNumber: 64512, gracefulRestartSeconds: 0 } },
      message: [/spec\.backend\.bgp\.gracefulRestartSeconds/, /greater than or equal to 1/],
    },
    {
      what: 'a password reference without a key',
      backend: {
        mode: 'bgp',
        bgp: { asNumber: 64512, peers: [{ ...tor, password: { secretKeyRef: { name: 'bgp' } } }] },
      },
      message: [/spec\.backend\.bgp\.peers\[0\]\.password\.secretKeyRef\.key/, /Required value/],
    },
    {
      what: 'a peer node selector with an unknown operator',
      backend: {
        mode: 'bgp',
        bgp: {
          asNumber: 64512,
          peers: [{ ...tor, nodeSelector: { matchExpressions: [{ key: 'rack', operator: 'Near' }] } }],
        },
      },
      message: [
        /spec\.backend\.bgp\.peers\[0\]\.nodeSelector\.matchExpressions\[0\]\.operator/,
        /Unsupported value/,
      ],
    },
  ];
  for (const c of cases) {
    it(`rejects ${c.what}`, async () => {
      const message = await rejected(c.backend);
      for (const m of c.message) expect(message).toMatch(m);
    });
  }

  it('accepts racks of peers with selectors, a 4-byte AS and a password, and applies the defaults', async () => {
    const obj = await kube.create<ClusterNetwork>(
      ClusterNetworkResource,
      clusterNetwork({
        mode: 'bgp',
        bgp: {
          asNumber: 4200000000,
          nodeToNodeMesh: false,
          peers: [
            { address: '198.18.1.1', asNumber: 65101, nodeSelector: { matchLabels: { rack: 'r1' } } },
            {
              address: 'fd00:18:2::1',
              asNumber: 4294967295,
              nodeSelector: { matchExpressions: [{ key: 'rack', operator: 'In', values: ['r2'] }] },
              password: { secretKeyRef: { namespace: 'trellis-system', name: 'bgp', key: 'tor2' } },
            },
          ],
        },
      }),
    );
    created.push(obj.metadata.name);
    expect(obj.spec?.backend.mode).toBe('bgp');
    expect(obj.spec?.backend.bgp?.asNumber).toBe(4200000000);
    expect(obj.spec?.backend.bgp?.gracefulRestartSeconds).toBe(120);
    expect(obj.spec?.backend.bgp?.peers?.[1]?.asNumber).toBe(4294967295);

    const mesh = await kube.create<ClusterNetwork>(
      ClusterNetworkResource,
      clusterNetwork({ mode: 'bgp', bgp: { asNumber: 64512 } }),
    );
    created.push(mesh.metadata.name);
    expect(mesh.spec?.backend.bgp?.nodeToNodeMesh).toBe(true);
  });
});

describe('NodeNetworkStatus BGP sessions', () => {
  it('stores per-peer sessions and serves the BGP printer column', async () => {
    const name = uniqueName('node');
    const obj = { apiVersion: API_VERSION, kind: 'NodeNetworkStatus', metadata: { name } };
    await kube.apply(NodeNetworkStatusResource, { ...obj, spec: {} }, { fieldManager: 'test' });
    await kube.apply(
      NodeNetworkStatusResource,
      {
        ...obj,
        status: {
          clusterNetwork: 'default',
          ready: true,
          backend: 'bgp',
          nodeIP: '198.18.1.11',
          lastHeartbeatTime: new Date().toISOString(),
          bgp: {
            established: '1/2',
            sessions: [
              {
                name: 'peer_198_18_1_1',
                peerAddress: '198.18.1.1',
                peerAS: 65101,
                kind: 'peer',
                state: 'Established',
                established: true,
                routesReceived: 3,
                routesAnnounced: 1,
              },
              {
                name: 'peer_198_18_9_9',
                peerAddress: '198.18.9.9',
                peerAS: 65109,
                kind: 'peer',
                state: 'Active',
                established: false,
                reason: 'Socket: Connection refused',
              },
            ],
          },
        },
      },
      { fieldManager: 'test' },
      'status',
    );
    const got = await kube.get<NodeNetworkStatus>(NodeNetworkStatusResource, name);
    expect(got.status?.bgp?.sessions.map((s) => s.state)).toEqual(['Established', 'Active']);
    expect(got.status?.bgp?.sessions[1]?.reason).toBe('Socket: Connection refused');
    const crd = await kube.request<{
      spec: { versions: { additionalPrinterColumns: { name: string; jsonPath: string }[] }[] };
    }>(
      'GET',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/nodenetworkstatuses.network.trellis.dev',
    );
    expect(crd.spec.versions[0]?.additionalPrinterColumns).toContainEqual(
      expect.objectContaining({ name: 'BGP', jsonPath: '.status.bgp.established' }),
    );
    await kube.delete(NodeNetworkStatusResource, name);
  });
});
