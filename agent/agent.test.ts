import { describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import type { IPBlock } from '../src/api/ipam.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
import { ConfigError, loadConfig } from './config.ts';
import { renderConflist } from './install.ts';
import { kernelBlocker, planPeers, type NodeObject } from './plan.ts';
import { renderStatus } from './status.ts';
import type { NetworkState } from './network.ts';

const env = {
  NODE_NAME: 'n1',
  TRELLIS_CLUSTER_NETWORK: 'default',
  TRELLIS_CNI_CONF_DIR: '/etc/cni/net.d',
  TRELLIS_CNI_BIN_DIR: '/opt/cni/bin',
  TRELLIS_SOCKET: '/run/trellis/cni.sock',
  TRELLIS_STATE_DIR: '/var/lib/trellis',
  TRELLIS_CNI_CONFIG: '/etc/trellis/10-trellis.conflist',
  TRELLIS_CNI_BINARY: '/usr/local/bin/trellis-cni',
};

describe('config from env', () => {
  it('reads the DaemonSet contract', () => {
    expect(loadConfig(env)).toMatchObject({
      nodeName: 'n1',
      socketPath: '/run/trellis/cni.sock',
      devicePrefix: 'trl',
      metricsPort: 0,
    });
  });

  it('names the missing variable and how to fix it', () => {
    const rest: Record<string, string> = { ...env };
    delete rest.NODE_NAME;
    expect(() => loadConfig(rest)).toThrow(ConfigError);
    expect(() => loadConfig(rest)).toThrow(/NODE_NAME is not set: .*downward API/);
    expect(() => loadConfig({ ...env, TRELLIS_METRICS_PORT: 'x' })).toThrow(/TRELLIS_METRICS_PORT="x"/);
  });
});

describe('conflist install', () => {
  it('points the first plugin at the real socket and keeps the chain', () => {
    const text = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'trellis',
      plugins: [{ type: 'trellis', socket: '/run/trellis/cni.sock' }, { type: 'portmap' }],
    });
    const out = JSON.parse(renderConflist(text, 'src', '/lab/n1/run/cni.sock')) as {
      plugins: { type: string; socket?: string }[];
    };
    expect(out.plugins[0]!.socket).toBe('/lab/n1/run/cni.sock');
    expect(out.plugins[1]!.type).toBe('portmap');
  });

  it('refuses a file that is not our conflist, saying what is wrong', () => {
    expect(() => renderConflist('{', 'f', 's')).toThrow(/not valid JSON/);
    expect(() => renderConflist('{"plugins":[{"type":"bridge"}]}', 'f', 's')).toThrow(
      /first plugin has "type": "trellis"/,
    );
  });
});

describe('peer plan', () => {
  const cn = {
    metadata: { name: 'default' },
    spec: { pools: [{ name: 'p4', cidr: '10.244.0.0/16' }], backend: { mode: 'vxlan' } },
  } as unknown as ClusterNetwork;
  const node = (name: string, ip?: string): NodeObject => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    status: { addresses: ip ? [{ type: 'InternalIP', address: ip }] : [] },
  });
  const block = (cidr: string, n?: string, pool = 'p4'): IPBlock =>
    ({ metadata: { name: cidr }, spec: { pool, cidr, node: n, allocations: {} } }) as unknown as IPBlock;
  const nns = (name: string, mac: string): NodeNetworkStatus =>
    ({ metadata: { name }, status: { vtepMAC: mac } }) as unknown as NodeNetworkStatus;

  it('routes no block that is not exactly one block of its pool (what a compromised node could write)', () => {
    const plan = planPeers(
      'n1',
      cn,
      [node('n1', '192.168.0.1'), node('n2', '192.168.0.2')],
      [
        block('0.0.0.0/1', 'n2'),
        block('10.244.0.0/16', 'n2'),
        block('10.244.0.128/25', 'n2'),
        block('10.245.0.0/26', 'n2'),
        block('10.244.0.65/26', 'n2'),
        block('fd00::/122', 'n2'),
        block('not-a-cidr', 'n2'),
        block('10.244.0.192/26', 'n2'),
      ],
      [],
    );
    expect(plan.peers).toEqual([{ name: 'n2', nodeIP: '192.168.0.2', blocks: ['10.244.0.192/26'] }]);
  });

  it('peers are other nodes with an address and blocks of our pools; own blocks listed separately', () => {
    const plan = planPeers(
      'n1',
      cn,
      [node('n1', '192.168.0.1'), node('n2', '192.168.0.2'), node('n3'), node('n4', '192.168.0.4')],
      [
        block('10.244.0.0/26', 'n1'),
        block('10.244.0.64/26', 'n2'),
        block('10.244.0.128/26', 'n3'),
        block('10.9.0.0/26', 'n4', 'other'),
        block('10.244.1.0/26'),
      ],
      [nns('n2', '0e:7e:c0:a8:00:02')],
    );
    expect(plan.ownBlocks).toEqual(['10.244.0.0/26']);
    expect(plan.peers).toEqual([
      { name: 'n2', nodeIP: '192.168.0.2', blocks: ['10.244.0.64/26'], vtepMAC: '0e:7e:c0:a8:00:02' },
    ]);
  });
});

describe('kernel features and node status', () => {
  const all = { vxlan: true, bridge: true, macvlan: true, ipvlan: false, wireguard: false, nftables: true };

  it('a missing backend module makes the node not ready, naming the module', () => {
    expect(kernelBlocker('vxlan', true, all)).toBeUndefined();
    expect(kernelBlocker('vxlan', true, { ...all, vxlan: false })).toMatchObject({
      reason: 'KernelModuleMissing',
      message: expect.stringContaining('vxlan'),
    });
    expect(kernelBlocker('host-gw', true, { ...all, vxlan: false })).toBeUndefined();
    expect(kernelBlocker('host-gw', true, { ...all, nftables: false })?.message).toContain('nftables');
    expect(kernelBlocker('host-gw', false, { ...all, nftables: false })).toBeUndefined();
  });

  it('status says what is missing and why the node is not ready', () => {
    const state: NetworkState = {
      ready: false,
      reason: 'KernelModuleMissing',
      message: 'backend vxlan needs the kernel vxlan module',
      backend: 'vxlan',
      nodeIP: '10.0.0.1',
      mtu: 1450,
      clusterCidrs: [],
      ownBlocks: [],
      peers: 0,
    };
    const st = renderStatus(
      'default',
      state,
      { ...all, vxlan: false },
      new Date(0),
      '1970-01-01T00:00:00.000Z',
    );
    expect(st.ready).toBe(false);
    expect(st.conditions!.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'KernelModuleMissing',
    });
    expect(st.conditions!.find((c) => c.type === 'KernelFeaturesMissing')!.message).toBe(
      'this kernel lacks: vxlan, ipvlan, wireguard',
    );
  });
});
