import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfListNamed } from '../cni/runner-config.ts';
import {
  AttachmentRequestError,
  attachmentStatus,
  attachmentNodeFindings,
  defaultRouteCommands,
  NetworksAnnotationError,
  parseNetworkStatus,
  parseNetworksAnnotation,
  resolveAttachments,
  statusEntry,
  unhonouredRequest,
  type NetworkAttachmentDefinition,
} from './index.ts';

function nad(namespace: string, name: string, config: unknown): NetworkAttachmentDefinition {
  return {
    apiVersion: 'k8s.cni.cncf.io/v1',
    kind: 'NetworkAttachmentDefinition',
    metadata: { namespace, name },
    spec: { config: typeof config === 'string' ? config : JSON.stringify(config) },
  };
}

const macvlan = {
  cniVersion: '1.0.0',
  name: 'm',
  type: 'macvlan',
  master: 'eth1',
  capabilities: { ips: true, mac: true },
  ipam: { type: 'static' },
};

describe('parseNetworksAnnotation: short form', () => {
  it('GIVEN the NPWG example WHEN parsed THEN namespace, name and interface are split', () => {
    expect(parseNetworksAnnotation(' net-a, other-ns/net-b ,net-c@eth2')).toEqual([
      { index: 0, name: 'net-a' },
      { index: 1, name: 'net-b', namespace: 'other-ns' },
      { index: 2, name: 'net-c', interface: 'eth2' },
    ]);
  });
  it('treats an empty or blank annotation as no request', () => {
    expect(parseNetworksAnnotation(undefined)).toEqual([]);
    expect(parseNetworksAnnotation('  ')).toEqual([]);
  });
  it.each([
    ['net-a,,net-b', /element 2 \(""\) is empty/],
    ['a/b/c', /element 1 \("a\/b\/c"\) has more than one "\/"/],
    ['net@x@y', /more than one "@"/],
    ['Net_A', /network name "Net_A" is not a valid object name/],
    ['net-a@averyveryverylongname', /interface "averyveryverylongname" is 21 characters long/],
    ['NS/net', /namespace "NS" is not a valid namespace name/],
  ])('rejects %j naming the element', (raw, msg) => {
    expect(() => parseNetworksAnnotation(raw)).toThrow(NetworksAnnotationError);
    expect(() => parseNetworksAnnotation(raw)).toThrow(msg);
  });
});

describe('parseNetworksAnnotation: JSON form', () => {
  it('keeps every NPWG field', () => {
    const raw = JSON.stringify([
      {
        name: 'sig',
        namespace: 'tel',
        interface: 'sig0',
        ips: ['10.1.0.5/24', 'fd00::5'],
        mac: '02:00:00:00:00:05',
        'default-route': ['10.1.0.1'],
        'cni-args': { vlan: 3 },
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'TCP' }],
        bandwidth: { ingressRate: 1000, egressRate: 2000 },
      },
      { name: 'media' },
    ]);
    expect(parseNetworksAnnotation(raw)).toEqual([
      {
        index: 0,
        name: 'sig',
        namespace: 'tel',
        interface: 'sig0',
        ips: ['10.1.0.5/24', 'fd00::5'],
        mac: '02:00:00:00:00:05',
        defaultRoute: ['10.1.0.1'],
        cniArgs: { vlan: 3 },
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
        bandwidth: { ingressRate: 1000, egressRate: 2000 },
      },
      { index: 1, name: 'media' },
    ]);
  });
  it('passes over extension keys with a reverse-domain name (NPWG 4.1.2.1)', () => {
    expect(parseNetworksAnnotation('[{"name":"a","org.example.tier":"gold"}]')).toEqual([
      { index: 0, name: 'a' },
    ]);
  });
  it('accepts the same network twice as two attachments, net1 and net2 (NPWG 4.2)', () => {
    expect(parseNetworksAnnotation('net-a,net-a')).toEqual([
      { index: 0, name: 'net-a' },
      { index: 1, name: 'net-a' },
    ]);
  });
  it('accepts a single object as Multus does', () => {
    expect(parseNetworksAnnotation('{"name":"a"}')).toEqual([{ index: 0, name: 'a' }]);
  });
  it.each([
    ['[{"name": "a",}]', /is not valid JSON/],
    ['[{"namespace": "x"}]', /element 1: "name" is required/],
    ['["a"]', /element 1 must be an object/],
    ['[{"name":"a"},{"name":"b","ips":["10.0.0.300"]}]', /element 2 \("b"\): ips entry "10.0.0.300"/],
    ['[{"name":"a","ips":"10.0.0.1"}]', /"ips" must be a list of strings/],
    ['[{"name":"a","ips":[]}]', /"ips" must list at least one address/],
    ['[{"name":"a","mac":"zz:00:00:00:00:01"}]', /mac "zz:00:00:00:00:01" is not a MAC address/],
    ['[{"name":"a","mac":"01:00:00:00:00:01"}]', /multicast/],
    ['[{"name":"a","default-route":["gw"]}]', /default-route entry "gw" is not a gateway IP/],
    ['[{"name":"a","interfce":"x"}]', /unknown field "interfce"/],
    ['[{"name":"a","portMappings":[{"hostPort":0,"containerPort":80}]}]', /portMappings\[0\]\.hostPort/],
    ['[{"name":"a","bandwidth":{"rate":1}}]', /bandwidth\.rate is unknown/],
    ['[{"name":"a","interface":"a/b"}]', /cannot contain/],
  ])('rejects %s naming the element and field', (raw, msg) => {
    expect(() => parseNetworksAnnotation(raw)).toThrow(msg);
  });
});

describe('resolveAttachments', () => {
  const nads = new Map([
    ['app/net-a', nad('app', 'net-a', macvlan)],
    ['other/net-b', nad('other', 'net-b', { cniVersion: '1.0.0', name: 'b', plugins: [{ type: 'bridge' }] })],
    ['app/net-c', nad('app', 'net-c', { ...macvlan, capabilities: undefined })],
    ['app/empty', nad('app', 'empty', '')],
    ['app/broken', nad('app', 'broken', '{"cniVersion": "1.0.0"')],
    ['app/noname', nad('app', 'noname', { cniVersion: '1.0.0', type: 'bridge' })],
  ]);
  const lookup = (ns: string, n: string) => nads.get(`${ns}/${n}`);
  const resolve = (raw: string) => resolveAttachments(parseNetworksAnnotation(raw), 'app', 'eth0', lookup);

  it('GIVEN short names THEN NADs come from the pod namespace unless named, interfaces net1, net2...', () => {
    const plans = resolve('net-a,other/net-b,net-a@media0');
    expect(plans.map((p) => [p.key, p.ifname])).toEqual([
      ['app/net-a', 'net1'],
      ['other/net-b', 'net2'],
      ['app/net-a', 'media0'],
    ]);
    // A single conf becomes a one-plugin list with the top-level name and version.
    expect(plans[0]!.config).toMatchObject({
      cniVersion: '1.0.0',
      name: 'm',
      plugins: [{ type: 'macvlan' }],
    });
    expect(plans[1]!.config.plugins).toEqual([{ type: 'bridge' }]);
  });
  it('passes ips and mac as capability args and cni-args as args.cni', () => {
    const [p] = resolve(
      '[{"name":"net-a","ips":["10.9.0.5/24"],"mac":"02:00:00:00:00:09","cni-args":{"k":"v"}}]',
    );
    expect(p!.capabilityArgs).toEqual({ ips: ['10.9.0.5/24'], mac: '02:00:00:00:00:09' });
    expect(p!.config.plugins[0]!.args).toEqual({
      cni: { k: 'v', ips: ['10.9.0.5/24'], mac: '02:00:00:00:00:09' },
    });
  });
  it('GIVEN a NAD without the ips/mac capabilities THEN the request still reaches its plugins as args.cni (NPWG 4.1.2.1.3.2)', () => {
    const [p] = resolve('[{"name":"net-c","ips":["10.0.0.1"],"mac":"02:00:00:00:00:01"}]');
    expect(p!.config.plugins.map((x) => x.args)).toEqual([
      { cni: { ips: ['10.0.0.1'], mac: '02:00:00:00:00:01' } },
    ]);
  });
  it.each([
    ['net-a,net-c@net1', /network 2 \(app\/net-c\): interface name net1 is already used by network 1/],
    ['net-a@eth0', /interface name eth0 is already used by the pod network/],
    ['missing', /network 1 \(app\/missing\): NetworkAttachmentDefinition app\/missing does not exist/],
    ['empty', /app\/empty has no spec.config; put the CNI config in spec.config/],
    ['broken', /app\/broken: spec.config is not valid JSON/],
    ['noname', /"name" is required/],
  ])('rejects %s naming the network', (raw, msg) => {
    expect(() => resolve(raw)).toThrow(AttachmentRequestError);
    expect(() => resolve(raw)).toThrow(msg);
  });
});

describe('a request the delegate must honour (NPWG 4.1.2.1.3.2, 4.1.2.1.4.2)', () => {
  const result = {
    cniVersion: '1.0.0',
    interfaces: [
      { name: 'host-side', mac: '02:aa:00:00:00:01' },
      { name: 'net1', mac: '02:00:00:00:00:09', sandbox: '/run/netns/p' },
    ],
    ips: [{ address: '10.9.0.5/24', interface: 1 }],
  };
  it('GIVEN the result shows the requested address and MAC on the interface THEN nothing is missing', () => {
    expect(
      unhonouredRequest({ ips: ['10.9.0.5/24'], mac: '02:00:00:00:00:09' }, 'net1', result),
    ).toBeUndefined();
    expect(unhonouredRequest({}, 'net1', result)).toBeUndefined();
  });
  it('GIVEN a delegate that ignored them THEN the ADD fails naming what is missing and what to use', () => {
    expect(unhonouredRequest({ ips: ['10.9.0.6'] }, 'net1', result)).toMatch(
      /"ips" 10\.9\.0\.6 requested, the result has 10\.9\.0\.5: .*IPAM trellis or static/,
    );
    // the host side's MAC is not the attachment's
    expect(unhonouredRequest({ mac: '02:aa:00:00:00:01' }, 'net1', result)).toMatch(
      /"mac" 02:aa:00:00:00:01 requested, the result has 02:00:00:00:00:09/,
    );
  });
});

describe('a NAD with no spec.config (NPWG: the on-disk config named like the NAD)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nad-conf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (file: string, conf: unknown) => writeFileSync(join(dir, file), JSON.stringify(conf));
  write('10-other.conflist', { cniVersion: '1.0.0', name: 'other', plugins: [{ type: 'bridge' }] });
  write('20-storage.conf', { cniVersion: '1.0.0', name: 'storage', type: 'ipvlan' });
  write('30-storage.conflist', { cniVersion: '1.0.0', name: 'storage', plugins: [{ type: 'macvlan' }] });
  writeFileSync(join(dir, '05-broken.conflist'), '{"name": "storage",');
  const lookup = (ns: string, n: string) => nad(ns, n, '');
  const onDisk = { dir, load: (name: string) => loadConfListNamed(dir, name) };
  const resolve = (raw: string) =>
    resolveAttachments(parseNetworksAnnotation(raw), 'app', 'eth0', lookup, onDisk);

  it("GIVEN a conflist and a conf with the NAD's name THEN the conflist is used (conflists first), a broken file skipped", () => {
    const [p] = resolve('storage');
    expect(p!.config).toMatchObject({ name: 'storage', plugins: [{ type: 'macvlan' }] });
    expect(p!.config.file).toBe(join(dir, '30-storage.conflist'));
  });
  it('GIVEN no file with that name THEN the error names the NAD, the folder and what to write', () => {
    expect(() => resolve('media')).toThrow(
      `network 1 (app/media): NetworkAttachmentDefinition app/media has no spec.config and ${dir} on this node ` +
        'has no CNI config named "media"; put the config in spec.config or in a .conflist/.conf there with that "name"',
    );
  });
});

describe('attachmentStatus', () => {
  it('GIVEN network-status THEN the entry of the extra interface, not the pod network with the same name', () => {
    const annotations = {
      'k8s.v1.cni.cncf.io/network-status': JSON.stringify([
        { name: 'trellis', interface: 'net1', default: true },
        { name: 'app/net-a', interface: 'net1', ips: ['10.9.0.5'] },
      ]),
    };
    expect(attachmentStatus(annotations, 'net1')?.name).toBe('app/net-a');
    expect(attachmentStatus(annotations, 'net2')).toBeUndefined();
    expect(attachmentStatus(undefined, 'net1')).toBeUndefined();
  });
});

describe('network-status', () => {
  it('GIVEN a macvlan result THEN the entry has the sandbox interface, bare IPs, mac and mtu', () => {
    const e = statusEntry({
      name: 'app/net-a',
      ifname: 'net1',
      isDefault: false,
      result: {
        cniVersion: '1.0.0',
        interfaces: [{ name: 'net1', mac: '02:00:00:00:00:09', mtu: 1400, sandbox: '/run/netns/p' }],
        ips: [{ address: '10.9.0.5/24', gateway: '10.9.0.1', interface: 0 }],
        dns: {},
      },
    });
    expect(e).toEqual({
      name: 'app/net-a',
      interface: 'net1',
      ips: ['10.9.0.5'],
      mac: '02:00:00:00:00:09',
      mtu: 1400,
      default: false,
      dns: {},
    });
    expect(parseNetworkStatus(JSON.stringify([e]))).toEqual([e]);
  });
  it('ignores node-side interfaces and reports gateways of the default network', () => {
    const e = statusEntry({
      name: 'trellis',
      ifname: 'eth0',
      isDefault: true,
      result: {
        cniVersion: '1.1.0',
        interfaces: [
          { name: 'trl0123', mac: 'ee:ee:ee:ee:ee:ee' },
          { name: 'eth0', mac: '02:aa:00:00:00:01', sandbox: '/run/netns/p' },
        ],
        ips: [
          { address: '10.244.1.5/32', gateway: '169.254.1.1', interface: 1 },
          { address: '10.99.0.1/32', interface: 0 },
        ],
        dns: { nameservers: ['10.96.0.10'] },
      },
    });
    expect(e).toMatchObject({
      interface: 'eth0',
      ips: ['10.244.1.5'],
      mac: '02:aa:00:00:00:01',
      default: true,
      gateway: ['169.254.1.1'],
      dns: { nameservers: ['10.96.0.10'] },
    });
  });
  it('reads a malformed annotation as no entries', () => {
    expect(parseNetworkStatus('{')).toEqual([]);
    expect(parseNetworkStatus(undefined)).toEqual([]);
  });
});

describe('defaultRouteCommands', () => {
  const result = { cniVersion: '1.0.0', ips: [{ address: '10.9.0.5/24' }, { address: 'fd00:9::5/64' }] };
  it('replaces the default route per family through the interface', () => {
    expect(
      defaultRouteCommands([
        { where: 'network 1 (a/b)', ifname: 'net1', gateways: ['10.9.0.1', 'fd00:9::1'], result },
      ]),
    ).toEqual([
      ['ip', 'route', 'replace', 'default', 'via', '10.9.0.1', 'dev', 'net1'],
      ['ip', '-6', 'route', 'replace', 'default', 'via', 'fd00:9::1', 'dev', 'net1'],
    ]);
  });
  it('rejects a gateway outside the subnet and two networks asking for the same family', () => {
    expect(() =>
      defaultRouteCommands([{ where: 'network 1 (a/b)', ifname: 'net1', gateways: ['10.8.0.1'], result }]),
    ).toThrow(
      /network 1 \(a\/b\): default-route 10.8.0.1 is not inside the network's subnet on net1 \(10.9.0.5\/24\)/,
    );
    expect(() =>
      defaultRouteCommands([
        { where: 'network 1 (a/b)', ifname: 'net1', gateways: ['10.9.0.1'], result },
        { where: 'network 2 (a/c)', ifname: 'net2', gateways: ['10.9.0.1'], result },
      ]),
    ).toThrow(
      /network 2 \(a\/c\): default-route 10.9.0.1: network 1 \(a\/b\) already asks for the IPv4 default route/,
    );
  });
});

describe('attachmentNodeFindings', () => {
  const cn = {
    apiVersion: 'network.trellis.dev/v1alpha1',
    kind: 'ClusterNetwork',
    metadata: { name: 'default' },
    spec: {
      pools: [],
      backend: { mode: 'vxlan' as const },
      attachments: [
        { name: 'mv', type: 'macvlan' as const, master: 'eth1' },
        { name: 'iv', type: 'ipvlan' as const, master: 'eth1' },
        { name: 'vl', type: 'vlan' as const, master: 'eth0', vlanId: 5 },
      ],
    },
  };
  const status = (
    name: string,
    interfaces: string[] | undefined,
    ipvlan = true,
    clusterNetwork = 'default',
  ) => ({
    apiVersion: 'network.trellis.dev/v1alpha1',
    kind: 'NodeNetworkStatus',
    metadata: { name },
    status: {
      clusterNetwork,
      ready: true,
      nodeIP: '',
      backend: 'vxlan' as const,
      kernel: {
        vxlan: true,
        bridge: true,
        macvlan: true,
        ipvlan,
        vlan: ipvlan,
        wireguard: false,
        nftables: true,
      },
      lastHeartbeatTime: '',
      ...(interfaces ? { interfaces } : {}),
    },
  });
  it('names the node and field when a master is missing or the kernel lacks ipvlan', () => {
    expect(
      attachmentNodeFindings(cn, [
        status('node2', ['eth0']),
        status('node1', ['eth0', 'eth1']),
        status('node3', undefined),
        status('other', ['eth0'], true, 'blue'),
        status('node4', ['eth0', 'eth1'], false),
      ]),
    ).toEqual([
      {
        field: 'spec.attachments[0].master',
        message: 'attachment mv: interface eth1 does not exist on node node2',
      },
      {
        field: 'spec.attachments[1].master',
        message: 'attachment iv: interface eth1 does not exist on node node2',
      },
      {
        field: 'spec.attachments[1].type',
        message:
          'attachment iv: the kernel of node node4 lacks ipvlan (load the ipvlan module or use macvlan)',
      },
      {
        field: 'spec.attachments[2].type',
        message: 'attachment vl: the kernel of node node4 lacks vlan (load the 8021q module)',
      },
    ]);
  });
});
