import { describe, expect, it } from 'vitest';
import type { NetworkConfigList } from '../cni/runner-config.ts';
import { delegateProblems, delegateStatus, type NetworkInUse, type NodeView } from './delegate-status.ts';

function list(name: string, ...plugins: Record<string, unknown>[]): NetworkConfigList {
  return { cniVersion: '1.0.0', name, plugins: plugins as NetworkConfigList['plugins'] };
}

const macvlan = (name: string, master: string) =>
  list(
    name,
    { type: 'macvlan', master, ipam: { type: 'trellis', pool: `attachment:${name}` } },
    { type: 'tuning' },
  );

function view(over: { missing?: string[]; interfaces?: string[] } = {}): NodeView {
  const missing = new Set(over.missing ?? []);
  const interfaces = new Set(over.interfaces ?? ['eth0', 'eth1']);
  return {
    node: 'node1',
    binDirs: ['/opt/cni/bin'],
    missingPlugins: (c) =>
      [
        ...new Set(c.plugins.flatMap((p) => [p.type, (p.ipam as { type?: string } | undefined)?.type])),
      ].filter((t): t is string => t !== undefined && missing.has(t)),
    hasInterface: (n) => interfaces.has(n),
  };
}

const mv: NetworkInUse = {
  networkName: 'mv',
  nad: 'default/mv',
  config: macvlan('mv', 'eth1'),
  pods: ['default/b', 'default/a'],
};

describe('STATUS of the extra networks in use on a node', () => {
  it('GIVEN every delegate binary and master present THEN no problem and STATUS succeeds', () => {
    expect(delegateProblems([mv], view())).toEqual([]);
    expect(delegateStatus([])).toBeUndefined();
  });

  it('GIVEN a delegate binary missing THEN 50 (ADD cannot be served) naming the NAD, the node, the plugin and where to install it', () => {
    const problems = delegateProblems([mv], view({ missing: ['macvlan'] }));
    expect(problems).toEqual([
      {
        code: 50,
        message:
          'NetworkAttachmentDefinition default/mv (CNI network mv) on node node1: plugin "macvlan" is not in ' +
          '/opt/cni/bin; install it there (pods asking for this network cannot start until then; ' +
          'the 2 pods attached (default/a, default/b) keep their interface)',
      },
    ]);
    expect(delegateStatus(problems)?.code).toBe(50);
  });

  it('GIVEN the IPAM plugin binary missing THEN 50 naming it', () => {
    const [p] = delegateProblems([mv], view({ missing: ['trellis'] }));
    expect(p?.code).toBe(50);
    expect(p?.message).toContain('plugin "trellis" is not in /opt/cni/bin');
  });

  it('GIVEN a macvlan master missing THEN 51 (attached pods lost the interface) naming the NAD, node, interface and the fix', () => {
    const problems = delegateProblems([mv], view({ interfaces: ['eth0'] }));
    expect(problems).toEqual([
      {
        code: 51,
        message:
          'NetworkAttachmentDefinition default/mv (CNI network mv) on node node1: macvlan master interface ' +
          "eth1 does not exist, so the 2 pods attached (default/a, default/b) lost this network's interface; " +
          'bring eth1 back and recreate those pods, or set "master" in the NetworkAttachmentDefinition to an ' +
          'interface the node has',
      },
    ]);
  });

  it('GIVEN a host-device attachment THEN its device missing from the node is not a problem (the pod holds it)', () => {
    const hd: NetworkInUse = {
      networkName: 'hd',
      nad: 'default/hd',
      config: list('hd', { type: 'host-device', device: 'hdev0', ipam: { type: 'trellis' } }),
      pods: ['default/a'],
    };
    expect(delegateProblems([hd], view({ interfaces: ['eth0'] }))).toEqual([]);
  });

  it('GIVEN both causes on different networks THEN STATUS is 51 and lists both; a network whose NAD is gone is named by its CNI network', () => {
    const gone: NetworkInUse = { networkName: 'old', config: macvlan('old', 'eth9'), pods: ['x/p'] };
    const withBridge: NetworkInUse = {
      networkName: 'br',
      nad: 'default/br',
      config: list('br', { type: 'bridge', bridge: 'br-data', ipam: { type: 'trellis' } }),
      pods: ['default/a'],
    };
    const problems = delegateProblems([mv, gone, withBridge], view({ missing: ['bridge'] }));
    expect(problems.map((p) => p.code)).toEqual([50, 51]);
    expect(problems[1]!.message).toMatch(
      /^CNI network old \(its NetworkAttachmentDefinition is gone\) on node node1: macvlan master interface eth9/,
    );
    const status = delegateStatus(problems)!;
    expect(status.code).toBe(51);
    expect(status.message).toMatch(
      /^extra networks: NetworkAttachmentDefinition default\/br .*; CNI network old/,
    );
  });
});
