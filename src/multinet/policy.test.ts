import { describe, expect, it } from 'vitest';
import type { PodObject } from '../policy/index.ts';
import { compileMultiPolicy, multiPolicyScript, policyNetworks, type MultiNetworkPolicy } from './policy.ts';
import { NETWORK_STATUS_ANNOTATION } from './status.ts';

function pod(name: string, app: string, mvIp?: string): PodObject {
  const status = [{ name: 'trellis', interface: 'eth0', ips: [`10.244.0.${name.length}`], default: true }];
  if (mvIp) status.push({ name: 'default/mv', interface: 'net1', ips: [mvIp], default: false });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      labels: { app },
      annotations: { [NETWORK_STATUS_ANNOTATION]: JSON.stringify(status) },
    },
    spec: { nodeName: 'node1' },
    status: { podIP: `10.244.0.${name.length}` },
  };
}

const policy = (name: string, forNets: string, spec: MultiNetworkPolicy['spec']): MultiNetworkPolicy => ({
  apiVersion: 'k8s.cni.cncf.io/v1beta1',
  kind: 'MultiNetworkPolicy',
  metadata: { name, namespace: 'default', annotations: { 'k8s.v1.cni.cncf.io/policy-for': forNets } },
  spec,
});

const pods = [
  pod('a', 'a', '10.77.1.11'),
  pod('bb', 'b', '10.77.1.12'),
  pod('ccc', 'c', '10.77.1.13'),
  pod('dddd', 'd'),
];
const ns = [{ metadata: { name: 'default', labels: { 'kubernetes.io/metadata.name': 'default' } } }];
const allowFromA = policy('allow-a', 'mv', {
  podSelector: { matchLabels: { app: 'b' } },
  ingress: [{ from: [{ podSelector: { matchLabels: { app: 'a' } } }], ports: [{ port: 8080 }] }],
});

describe('MultiNetworkPolicy -> nft for one interface', () => {
  it('reads policy-for with bare names in the policy namespace', () => {
    expect(policyNetworks(policy('x', ' mv, other/sig ,', {}))).toEqual(['default/mv', 'other/sig']);
  });

  it('GIVEN a policy for the network WHEN compiled for the selected pod THEN peers are network-status addresses and hooks are local, on that interface', () => {
    const rs = compileMultiPolicy(
      { pod: 'default/bb', network: 'default/mv', ifname: 'net1' },
      { pods, namespaces: ns, policies: [allowFromA] },
    )!;
    expect(rs.table).toBe('trellis-mnp-net1');
    const script = multiPolicyScript(rs);
    // Only the enforced pod's address gets a verdict; peers by their address on this network.
    expect([...rs.sets.get('ingress4')!.elements]).toEqual([
      expect.stringMatching(/^10\.77\.1\.12 : jump in-all-/),
    ]);
    expect(rs.sets.get('egress4')!.elements.size).toBe(0);
    const peerSet = [...rs.sets.entries()].find(([n]) => n.startsWith('p-') && n.endsWith('-4'))![1];
    expect([...peerSet.elements]).toEqual(['10.77.1.11']);
    expect(script).toContain('type filter hook input priority filter; policy accept;');
    expect(script).toContain('iifname != "net1" accept');
    expect(script).toContain('th dport { 8080 } accept');
    expect(script).not.toContain('10.244.');
  });

  it('gives nothing to enforce for a network no policy is for, or a pod not selected', () => {
    expect(
      compileMultiPolicy(
        { pod: 'default/bb', network: 'default/other', ifname: 'net2' },
        { pods, namespaces: ns, policies: [allowFromA] },
      ),
    ).toBeUndefined();
    const rs = compileMultiPolicy(
      { pod: 'default/a', network: 'default/mv', ifname: 'net1' },
      { pods, namespaces: ns, policies: [allowFromA] },
    )!;
    expect(rs.sets.get('ingress4')!.elements.size).toBe(0);
  });
});
