// CRD admission against the real kube-apiserver: every bad ClusterNetwork is rejected with 422 and
// a message naming the field and the problem; a valid one is accepted with the schema defaults;
// the printer columns are what `kubectl get clusternetwork` shows.
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import { ClusterNetworkResource } from '../../src/api/group.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import { ApiError } from '../../src/kube/errors.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { clusterNetworkObject as clusterNetwork, rejection } from '../support/admission.ts';
import { MultiNetworkPolicyResource, multiNetworkPolicy } from '../../src/multinet/index.ts';
import type { NetworkPolicySpec } from '../../src/policy/index.ts';
import { adminClient, kubeconfigPath, uniqueName } from '../support/kube.ts';

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

const v4 = { name: 'v4', cidr: '10.244.0.0/16' };

/** Creates the ClusterNetwork and returns the API server's rejection message (fails if accepted). */
const rejected = (spec: unknown): Promise<string> => rejection(kube, clusterNetwork(spec), created);

describe('ClusterNetwork admission (schema + CEL)', () => {
  const cases: { what: string; spec: unknown; message: RegExp[] }[] = [
    {
      what: 'a malformed pool CIDR',
      spec: { pools: [{ name: 'v4', cidr: '10.244.0.0/33' }] },
      message: [/spec\.pools\[0\]\.cidr/, /must be a CIDR/],
    },
    {
      what: 'a pool CIDR that is not a CIDR at all',
      spec: { pools: [{ name: 'v4', cidr: 'ten-dot-something' }] },
      message: [/spec\.pools\[0\]\.cidr/, /must be a CIDR/],
    },
    {
      what: 'a pool CIDR with host bits set',
      spec: { pools: [{ name: 'v4', cidr: '10.244.3.1/16' }] },
      message: [/spec\.pools\[0\]\.cidr/, /10\.244\.3\.1\/16 has host bits set/],
    },
    {
      what: 'an IPv6 pool CIDR with host bits set',
      spec: { pools: [{ name: 'v6', cidr: 'fd00:10:244::1/56' }] },
      message: [/spec\.pools\[0\]\.cidr/, /has host bits set/],
    },
    {
      what: 'overlapping pools',
      spec: { pools: [v4, { name: 'inner', cidr: '10.244.128.0/17' }] },
      message: [/spec\.pools:/, /pool CIDRs must not overlap/],
    },
    {
      what: 'two pools with the same CIDR',
      spec: { pools: [v4, { name: 'again', cidr: '10.244.0.0/16' }] },
      message: [/spec\.pools:/, /must not overlap/],
    },
    {
      what: 'duplicate pool names',
      spec: { pools: [v4, { name: 'v4', cidr: '10.245.0.0/16' }] },
      message: [/spec\.pools\[1\]: Duplicate value/, /"name":"v4"/],
    },
    {
      what: 'an IPv4 block size shorter than the pool prefix',
      spec: { pools: [{ name: 'v4', cidr: '10.244.0.0/24', blockSize: 22 }] },
      message: [/spec\.pools\[0\]\.blockSize/, /block size is out of range for pool 10\.244\.0\.0\/24/],
    },
    {
      what: 'an IPv4 block size above 30',
      spec: { pools: [{ name: 'v4', cidr: '10.244.0.0/16', blockSize: 31 }] },
      message: [/spec\.pools\[0\]\.blockSize/, /out of range/],
    },
    {
      what: 'a pool too small for the default IPv4 block size 26',
      spec: { pools: [{ name: 'v4', cidr: '10.244.0.0/28' }] },
      message: [/spec\.pools\[0\]\.blockSize/, /out of range for pool 10\.244\.0\.0\/28/],
    },
    {
      what: 'an IPv6 block size out of range',
      spec: { pools: [{ name: 'v6', cidr: 'fd00:10:244::/64', blockSize: 127 }] },
      message: [/spec\.pools\[0\]\.blockSize/, /IPv6 116\.\.126/],
    },
    {
      what: 'an unknown backend',
      spec: { pools: [v4], backend: { mode: 'geneve' } },
      message: [/spec\.backend\.mode: Unsupported value: "geneve"/, /"vxlan", "host-gw"/],
    },
    {
      what: 'a conflist cniVersion the agent does not offer',
      spec: { pools: [v4], agent: { cniVersion: '0.4.0' } },
      message: [/spec\.agent\.cniVersion: Unsupported value: "0\.4\.0"/, /"1\.0\.0", "1\.1\.0"/],
    },
    {
      what: 'a VNI out of range',
      spec: { pools: [v4], backend: { vni: 16777216 } },
      message: [/spec\.backend\.vni/, /less than or equal to 16777215/],
    },
    {
      what: 'a VNI of zero',
      spec: { pools: [v4], backend: { vni: 0 } },
      message: [/spec\.backend\.vni/, /greater than or equal to 1/],
    },
    {
      what: 'a port out of range',
      spec: { pools: [v4], backend: { port: 65536 } },
      message: [/spec\.backend\.port/, /less than or equal to 65535/],
    },
    {
      what: 'an MTU below 576',
      spec: { pools: [v4], backend: { mtu: 500 } },
      message: [/spec\.backend\.mtu/, /greater than or equal to 576/],
    },
    {
      what: 'an MTU above 9000',
      spec: { pools: [v4], backend: { mtu: 9001 } },
      message: [/spec\.backend\.mtu/, /less than or equal to 9000/],
    },
    {
      what: 'no pools',
      spec: { pools: [] },
      message: [/spec\.pools/, /at least 1 items/],
    },
    {
      what: 'duplicate attachment names',
      spec: {
        pools: [v4],
        attachments: [
          { name: 'sig', type: 'bridge' },
          { name: 'sig', type: 'macvlan', master: 'eth1' },
        ],
      },
      message: [/spec\.attachments\[1\]: Duplicate value/, /"name":"sig"/],
    },
    {
      what: 'an unknown attachment type',
      spec: { pools: [v4], attachments: [{ name: 'x', type: 'sriov', master: 'eth1' }] },
      message: [
        /spec\.attachments\[0\]\.type: Unsupported value: "sriov"/,
        /"macvlan", "ipvlan", "bridge", "host-device", "vlan"/,
      ],
    },
    {
      what: 'ipvlanMode on a macvlan attachment',
      spec: { pools: [v4], attachments: [{ name: 'x', type: 'macvlan', master: 'eth1', ipvlanMode: 'l3' }] },
      message: [
        /spec\.attachments\[0\]\.ipvlanMode: Invalid value/,
        /ipvlanMode applies only to type ipvlan/,
      ],
    },
    {
      what: 'macvlan without master',
      spec: { pools: [v4], attachments: [{ name: 'x', type: 'macvlan' }] },
      message: [
        /spec\.attachments\[0\]\.master/,
        /master \(the host interface\) is required for type macvlan/,
      ],
    },
    {
      what: 'host-device without master',
      spec: { pools: [v4], attachments: [{ name: 'x', type: 'host-device' }] },
      message: [/spec\.attachments\[0\]\.master/, /required for type host-device/],
    },
    {
      what: 'vlan without vlanId',
      spec: { pools: [v4], attachments: [{ name: 'x', type: 'vlan', master: 'eth1' }] },
      message: [/spec\.attachments\[0\]\.vlanId/, /vlanId \(1\.\.4094\) is required for type vlan/],
    },
    {
      what: 'vlan with vlanId 4095',
      spec: { pools: [v4], attachments: [{ name: 'x', type: 'vlan', master: 'eth1', vlanId: 4095 }] },
      message: [/spec\.attachments\[0\]\.vlanId/, /less than or equal to 4094/],
    },
    {
      what: 'an attachment pool CIDR that is malformed',
      spec: { pools: [v4], attachments: [{ name: 'x', type: 'bridge', pool: { cidr: '192.168.1.0/40' } }] },
      message: [/spec\.attachments\[0\]\.pool\.cidr/, /must be a CIDR/],
    },
    {
      what: 'an attachment pool CIDR with host bits set',
      spec: { pools: [v4], attachments: [{ name: 'x', type: 'bridge', pool: { cidr: '192.168.1.9/24' } }] },
      message: [/spec\.attachments\[0\]\.pool\.cidr/, /has host bits set/],
    },
    {
      what: 'an attachment gateway outside its CIDR',
      spec: {
        pools: [v4],
        attachments: [
          { name: 'x', type: 'bridge', pool: { cidr: '192.168.1.0/24', gateway: '192.168.2.1' } },
        ],
      },
      message: [
        /spec\.attachments\[0\]\.pool\.gateway/,
        /gateway 192\.168\.2\.1 is outside 192\.168\.1\.0\/24/,
      ],
    },
    {
      what: 'an attachment range start that is not an IP',
      spec: {
        pools: [v4],
        attachments: [
          { name: 'x', type: 'bridge', pool: { cidr: '192.168.1.0/24', rangeStart: '192.168.1' } },
        ],
      },
      message: [/spec\.attachments\[0\]\.pool\.rangeStart/, /must be an IP address/],
    },
    {
      what: 'a static-address namespace that is not a namespace name',
      spec: { pools: [{ ...v4, staticAddresses: { namespaces: ['Team_A'] } }] },
      message: [
        /spec\.pools\[0\]\.staticAddresses\.namespaces\[0\]/,
        /namespace Team_A is not a namespace name/,
      ],
    },
    {
      what: 'an attachment pool namespace that is not a namespace name',
      spec: {
        pools: [v4],
        attachments: [{ name: 'x', type: 'bridge', pool: { cidr: '192.168.1.0/24', namespaces: ['a b'] } }],
      },
      message: [/spec\.attachments\[0\]\.pool\.namespaces\[0\]/, /namespace a b is not a namespace name/],
    },
  ];

  for (const c of cases) {
    it(`rejects ${c.what}`, async () => {
      const message = await rejected(c.spec);
      for (const m of c.message) expect(message).toMatch(m);
    });
  }

  it('rejects a name too long to be a label value', async () => {
    const obj = clusterNetwork({ pools: [v4] });
    obj.metadata.name = `cn-${'x'.repeat(64)}`;
    await expect(kube.create(ClusterNetworkResource, obj)).rejects.toSatisfy(
      (e: unknown) =>
        e instanceof ApiError &&
        e.code === 422 &&
        /metadata\.name must be at most 63 characters/.test(e.message),
    );
  });

  it('accepts a valid dual-stack ClusterNetwork with attachments and applies the schema defaults', async () => {
    const obj = await kube.create<ClusterNetwork>(
      ClusterNetworkResource,
      clusterNetwork({
        pools: [
          { name: 'v4', cidr: '10.244.0.0/16', blockSize: 24 },
          { name: 'v6', cidr: 'fd00:10:244::/56' },
          { name: 'edge', cidr: '10.250.0.0/20', nodeSelector: { matchLabels: { zone: 'edge' } } },
        ],
        attachments: [
          {
            name: 'sig-net',
            type: 'macvlan',
            master: 'eth1',
            pool: {
              cidr: '192.168.10.0/24',
              rangeStart: '192.168.10.10',
              rangeEnd: '192.168.10.200',
              gateway: '192.168.10.1',
            },
          },
          { name: 'media-net', namespace: 'media', type: 'vlan', master: 'eth2', vlanId: 100 },
        ],
      }),
    );
    created.push(obj.metadata.name);
    expect(obj.spec?.backend).toEqual({ mode: 'vxlan', vni: 4096, port: 4789 });
    expect(obj.spec?.masquerade).toBe(true);
    expect(obj.spec?.agent).toEqual({
      logLevel: 'info',
      cniConfDir: '/etc/cni/net.d',
      cniBinDir: '/opt/cni/bin',
      cniVersion: '1.0.0',
      socketPath: '/run/trellis/cni.sock',
    });
    expect(obj.spec?.attachments?.[0]?.namespace).toBe('default');
    expect(obj.spec?.attachments?.[1]?.namespace).toBe('media');
    // Status is a subresource: a write to the main resource cannot set it.
    const withStatus = await kube.mergePatch<ClusterNetwork>(ClusterNetworkResource, obj.metadata.name, {
      status: { poolCount: 9 },
    });
    expect(withStatus.status?.poolCount).toBeUndefined();
  });

  it('accepts host-gw and the IPv6 block size limits', async () => {
    const obj = await kube.create<ClusterNetwork>(
      ClusterNetworkResource,
      clusterNetwork({
        pools: [
          { name: 'v6a', cidr: 'fd00:1::/64', blockSize: 116 },
          { name: 'v6b', cidr: 'fd00:2::/120', blockSize: 126 },
        ],
        backend: { mode: 'host-gw', mtu: 9000 },
      }),
    );
    created.push(obj.metadata.name);
    expect(obj.spec?.backend).toEqual({ mode: 'host-gw', vni: 4096, port: 4789, mtu: 9000 });
  });

  it('also judges updates: a valid object cannot be edited into an overlapping one', async () => {
    const obj = await kube.create<ClusterNetwork>(ClusterNetworkResource, clusterNetwork({ pools: [v4] }));
    created.push(obj.metadata.name);
    await expect(
      kube.mergePatch(ClusterNetworkResource, obj.metadata.name, {
        spec: { pools: [v4, { name: 'b', cidr: '10.0.0.0/8' }] },
      }),
    ).rejects.toSatisfy(
      (e: unknown) => e instanceof ApiError && e.code === 422 && /must not overlap/.test(e.message),
    );
  });
});

describe('ClusterNetwork printer columns', () => {
  it('declares READY, BACKEND, POOLS, NODES and AGE and the short name cn', async () => {
    const crd = await kube.get<
      KubeObject<{
        names: { shortNames: string[] };
        versions: { name: string; additionalPrinterColumns: { name: string; jsonPath: string }[] }[];
      }>
    >(Builtin.CustomResourceDefinition, 'clusternetworks.network.trellis.dev');
    expect(crd.spec?.names.shortNames).toContain('cn');
    const columns = crd.spec!.versions[0]!.additionalPrinterColumns.map((c) => [c.name, c.jsonPath]);
    expect(columns).toEqual([
      ['Ready', '.status.conditions[?(@.type=="Ready")].status'],
      ['Backend', '.spec.backend.mode'],
      ['Pools', '.status.poolCount'],
      ['Nodes', '.status.nodesReady'],
      ['Age', '.metadata.creationTimestamp'],
    ]);
  });

  it('serves them as a Table, filled from spec and status, like kubectl get clusternetwork', async () => {
    const obj = await kube.create<ClusterNetwork>(
      ClusterNetworkResource,
      clusterNetwork({ pools: [v4], backend: { mode: 'host-gw' } }),
    );
    created.push(obj.metadata.name);
    await kube.mergePatch(
      ClusterNetworkResource,
      obj.metadata.name,
      {
        status: {
          observedGeneration: 1,
          poolCount: 1,
          nodesReady: '2/3',
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'AgentsReady',
              message: 'ok',
              lastTransitionTime: new Date().toISOString(),
            },
          ],
        },
      },
      undefined,
      'status',
    );
    const table = await tableOf(`/apis/network.trellis.dev/v1alpha1/clusternetworks/${obj.metadata.name}`);
    expect(table.kind).toBe('Table');
    const names = table.columnDefinitions.map((c) => c.name);
    expect(names).toEqual(['Name', 'Ready', 'Backend', 'Pools', 'Nodes', 'Age']);
    const cells = table.rows[0]!.cells;
    expect(cells.slice(0, 5)).toEqual([obj.metadata.name, 'True', 'host-gw', 1, '2/3']);
  });
});

interface Table {
  kind: string;
  columnDefinitions: { name: string }[];
  rows: { cells: unknown[] }[];
}

/**
 * GET as a meta.k8s.io Table, the form kubectl prints. KubeClient always asks for plain JSON, so
 * this one request is made with the kubeconfig's credentials directly.
 */
async function tableOf(path: string): Promise<Table> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  const opts: { ca?: string; cert?: string; key?: string } = {};
  await kc.applyToHTTPSOptions(opts as never);
  const agent = new Agent({ connect: { ca: opts.ca, cert: opts.cert, key: opts.key } });
  try {
    const res = await request(kc.getCurrentCluster()!.server + path, {
      dispatcher: agent,
      headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
    });
    const body = (await res.body.json()) as Table;
    expect(res.statusCode).toBe(200);
    return body;
  } finally {
    await agent.close();
  }
}

describe('MultiNetworkPolicy CRD (k8s.cni.cncf.io/v1beta1)', () => {
  const MNP = MultiNetworkPolicyResource;
  const policy = (name: string, spec: unknown): KubeObject =>
    multiNetworkPolicy(name, 'default', 'mv', spec as NetworkPolicySpec);

  it('stores a NetworkPolicy-shaped spec as written, named ports and ipBlock included', async () => {
    const name = uniqueName('mnp');
    const spec = {
      podSelector: { matchLabels: { app: 'b' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { app: 'a' } } }],
          ports: [{ protocol: 'TCP', port: 'http' }],
        },
      ],
      egress: [
        {
          to: [{ ipBlock: { cidr: '10.77.0.0/16', except: ['10.77.9.0/24'] } }],
          ports: [{ port: 53, endPort: 60 }],
        },
      ],
    };
    await kube.create(MNP, policy(name, spec));
    try {
      const got = await kube.get<KubeObject>(MNP, name, 'default');
      expect(got.spec).toEqual(spec);
    } finally {
      await kube.delete(MNP, name, 'default');
    }
  });

  it('rejects a policy type that is not Ingress or Egress, naming the field', async () => {
    const err = await kube
      .create(MNP, policy(uniqueName('mnp'), { podSelector: {}, policyTypes: ['Both'] }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toMatch(/spec\.policyTypes\[0\]: Unsupported value: "Both"/);
  });
});
