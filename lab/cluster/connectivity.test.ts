import { describe, expect, it } from 'vitest';
import { clusterPlan, HOST_PORT, POD_PORT, probePods } from './connectivity.ts';

describe('connectivity test on a real cluster', () => {
  it('deploys a probe pod and a hostNetwork probe pinned to every node', () => {
    const pods = probePods('tc', 'trellis/probe:0.1.0', ['n1', 'n2']);
    expect(pods.map((p) => p.metadata.name)).toEqual(['pod-n1', 'host-n1', 'pod-n2', 'host-n2']);
    const host = pods[1] as {
      spec: { nodeName: string; hostNetwork: boolean; containers: { args: string[] }[] };
    };
    expect(host.spec).toMatchObject({ nodeName: 'n1', hostNetwork: true });
    expect(host.spec.containers[0]?.args).toEqual(['--name', 'node/n1', '--port', String(HOST_PORT)]);
  });

  it('expects no NAT between pods and to nodes, and the node address at the outside host', () => {
    const { senders, endpoints } = clusterPlan(
      [
        { name: 'pod-n1', ip: '10.0.1.1', node: 'n1', host: false },
        { name: 'pod-n2', ip: '10.0.2.1', node: 'n2', host: false },
        { name: 'host-n1', ip: '192.0.2.1', node: 'n1', host: true },
        { name: 'host-n2', ip: '192.0.2.2', node: 'n2', host: true },
      ],
      'tc',
      '192.0.2.254',
    );
    expect(endpoints.map((e) => e.id)).toEqual(['tc/pod-n1', 'tc/pod-n2', 'n1', 'n2', 'outside']);
    const [sender, exps] = senders[0]!;
    expect(sender.id).toBe('tc/pod-n1');
    expect(exps.map((e) => [e.target.id, e.target.port, e.expectedSource])).toEqual([
      ['tc/pod-n2', POD_PORT, '10.0.1.1'],
      ['n1', HOST_PORT, '10.0.1.1'],
      ['n2', HOST_PORT, '10.0.1.1'],
      ['outside', POD_PORT, '192.0.2.1'],
    ]);
    // nodes probe every pod, reachability only
    expect(senders.slice(2).map(([s, e]) => [s.id, e.length, e.every((x) => !x.expectedSource)])).toEqual([
      ['n1', 2, true],
      ['n2', 2, true],
    ]);
  });
});
