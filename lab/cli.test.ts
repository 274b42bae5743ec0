// The CLI's parsing and the lab plan: pure functions, so typos and bad flags get clear answers.
import { describe, expect, it } from 'vitest';
import { keyValues, parseArgv } from './args.ts';
import { parseSubnet, planLab, validatePrefix } from './state.ts';
import { podNetnsName } from './pods.ts';
import { loadFirstConfList } from '../src/cni/runner-config.ts';
import { podIPs } from '../src/cni/runner.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('parseArgv', () => {
  const flags = { node: 'string', label: 'multi', json: 'boolean' } as const;
  it('reads values, repeated flags, booleans and the command after --', () => {
    const p = parseArgv(
      ['web', '--node', 'node1', '--label=a=b', '--label', 'c=d', '--json', '--', 'ip', '-br', 'a'],
      flags,
    );
    expect(p.positionals).toEqual(['web']);
    expect(p.strings.node).toBe('node1');
    expect(p.multi.label).toEqual(['a=b', 'c=d']);
    expect(p.booleans.json).toBe(true);
    expect(p.rest).toEqual(['ip', '-br', 'a']);
  });
  it('names an unknown flag and what the command takes', () => {
    expect(() => parseArgv(['--nod', 'x'], flags)).toThrow(/unknown flag --nod.*--node/);
  });
  it('says when a value is missing', () => {
    expect(() => parseArgv(['--node'], flags)).toThrow(/--node needs a value/);
  });
  it('keyValues wants key=value', () => {
    expect(keyValues(['a=b=c'], 'label')).toEqual({ a: 'b=c' });
    expect(() => keyValues(['nope'], 'label')).toThrow(/--label "nope" must look like key=value/);
  });
});

describe('planLab', () => {
  it('names and addresses nodes on the underlay', () => {
    const s = planLab({
      prefix: 'tle',
      subnet: parseSubnet('198.18.8.0/24'),
      nodes: 3,
      backend: 'vxlan',
      stateDir: '/s',
    });
    expect(s.bridge).toBe('tle-br0');
    expect(s.gateway).toBe('198.18.8.1');
    expect(s.nodes.map((n) => [n.name, n.netns, n.ip, n.veth])).toEqual([
      ['node1', 'tle-node1', '198.18.8.11', 'tle-n1'],
      ['node2', 'tle-node2', '198.18.8.12', 'tle-n2'],
      ['node3', 'tle-node3', '198.18.8.13', 'tle-n3'],
    ]);
    expect(s.outside).toEqual({ netns: 'tle-outside', ip: '198.18.8.254', veth: 'tle-out' });
    for (const n of s.nodes) expect(n.veth.length).toBeLessThanOrEqual(15);
  });
  it('rejects bad input with what to fix', () => {
    expect(() => parseSubnet('10.0.0.0/16')).toThrow(/\/24/);
    expect(() => validatePrefix('Bad-Prefix')).toThrow(/prefix/);
    expect(() =>
      planLab({ prefix: 'trl', subnet: '198.18.0', nodes: 0, backend: 'vxlan', stateDir: '/s' }),
    ).toThrow(/--nodes/);
  });
  it('derives a pod netns name from the uid', () => {
    expect(podNetnsName('trl', '96e1d74c-61cc-4a5e-9a3b-000000000000')).toBe('trl-pod-96e1d74c61cc');
  });
});

describe('CNI runtime helpers', () => {
  it('picks the lexically first config, skipping broken files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-cni-'));
    writeFileSync(join(dir, '05-broken.conflist'), '{not json');
    writeFileSync(
      join(dir, '20-b.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'b', plugins: [{ type: 'b' }] }),
    );
    writeFileSync(join(dir, '10-a.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', type: 'bridge' }));
    const l = loadFirstConfList(dir);
    expect(l?.name).toBe('a');
    expect(l?.plugins).toEqual([{ type: 'bridge' }]);
  });
  it('takes pod IPs from interfaces inside the sandbox', () => {
    const ips = podIPs({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'veth1' }, { name: 'eth0', sandbox: '/run/netns/x' }],
      ips: [
        { address: '10.244.0.5/26', interface: 1 },
        { address: '10.9.9.9/32', interface: 0 },
      ],
    });
    expect(ips).toEqual(['10.244.0.5']);
  });
});
