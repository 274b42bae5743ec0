import { describe, expect, it } from 'vitest';
import { renderMasquerade } from './masquerade.ts';
import { linkLocalFromMac, mirrorRoute, vtepMacFor } from './peers.ts';
import {
  GATEWAY_MAC,
  hostSideCommands,
  hostVethName,
  linkCommands,
  podAddressCommands,
  podMac,
} from './podnet.ts';

describe('masquerade', () => {
  const spec = {
    table: 't',
    clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'],
    nodeAddresses: ['192.168.1.2', '192.168.1.3', 'fd00::2'],
  };

  it('masquerades only pod traffic leaving the cluster, never to pods or nodes', () => {
    const v4 = renderMasquerade(spec, 4);
    expect(v4).toContain('elements = { 10.244.0.0/16 }');
    expect(v4).toContain('elements = { 192.168.1.2, 192.168.1.3 }');
    expect(v4).toContain('ip saddr @cluster ip daddr != @cluster ip daddr != @nodes masquerade');
    expect(v4).not.toContain('fd00');
    const v6 = renderMasquerade(spec, 6);
    expect(v6).toContain('ip6 saddr @cluster ip6 daddr != @cluster ip6 daddr != @nodes masquerade');
    expect(v6).toContain('fd00::2');
  });

  it('renders deterministically and tolerates empty sets', () => {
    expect(renderMasquerade(spec, 4)).toBe(
      renderMasquerade({ ...spec, nodeAddresses: [...spec.nodeAddresses].reverse() }, 4),
    );
    expect(renderMasquerade({ table: 't', clusterCidrs: [], nodeAddresses: [] }, 4)).not.toContain(
      'elements',
    );
  });
});

describe('names and addresses', () => {
  it('node-side veth names fit IFNAMSIZ and differ per attachment', () => {
    const a = hostVethName('trl', 'c1', 'eth0');
    expect(a.length).toBeLessThanOrEqual(15);
    expect(a.startsWith('trl')).toBe(true);
    expect(hostVethName('trl', 'c1', 'net1')).not.toBe(a);
    expect(hostVethName('trl', 'c1', 'eth0')).toBe(a);
  });

  it('pod MACs are locally administered unicast and stable', () => {
    const mac = podMac('c1', 'eth0');
    const first = parseInt(mac.slice(0, 2), 16);
    expect(first & 0x02).toBe(0x02);
    expect(first & 0x01).toBe(0);
    expect(podMac('c1', 'eth0')).toBe(mac);
  });

  it('derives EUI-64 link-locals and vtep MACs', () => {
    expect(linkLocalFromMac('ee:ee:ee:ee:ee:ee')).toBe('fe80::ecee:eeff:feee:eeee');
    expect(vtepMacFor('10.1.2.3')).toBe('0e:7e:0a:01:02:03');
  });
});

describe('pod wiring commands', () => {
  const spec = {
    netns: '/run/netns/p',
    ifname: 'eth0',
    hostVeth: 'trlabc',
    mtu: 1450,
    mac: '0a:01:02:03:04:05',
    addresses: [
      { ip: '10.244.1.5', family: 4 as const },
      { ip: 'fd00::5', family: 6 as const },
    ],
  };

  it('creates the pair from the node with the pod end named and placed in the pod netns', () => {
    const [add, up] = linkCommands(spec, '/run/netns/x');
    expect(add).toBe(
      `link add name trlabc address ${GATEWAY_MAC} mtu 1450 type veth peer name eth0 address 0a:01:02:03:04:05 mtu 1450 netns /run/netns/x`,
    );
    expect(up).toBe('link set dev trlabc up');
  });

  it('gives the pod /32 and /128 with default routes via the fixed link-local gateway', () => {
    const lines = podAddressCommands(spec);
    expect(lines.slice(0, 2)).toEqual(['link set lo up', 'link set dev eth0 up']);
    expect(lines).toContain('addr add 10.244.1.5/32 dev eth0');
    expect(lines).toContain('route add default via 169.254.1.1 dev eth0');
    expect(lines).toContain('addr add fd00::5/128 dev eth0 nodad');
    expect(lines).toContain('route add ::/0 via fe80::1 dev eth0');
  });

  it('routes each pod address to the node-side veth with a permanent neighbour', () => {
    const lines = hostSideCommands(spec);
    expect(lines).toContain('route replace 10.244.1.5/32 dev trlabc scope link proto 222');
    expect(lines).toContain('neigh replace fd00::5 lladdr 0a:01:02:03:04:05 dev trlabc nud permanent');
  });
});

describe('learned BGP routes copied from the speaker table into main', () => {
  it('keeps destination and next hop and sets our protocol number', () => {
    expect(
      mirrorRoute({ dst: '10.244.1.0/26', gateway: '198.19.1.1', dev: 'rk0', table: '221', flags: [] }),
    ).toEqual({ dst: '10.244.1.0/26', line: 'route replace 10.244.1.0/26 via 198.19.1.1 dev rk0 proto 221' });
    expect(
      mirrorRoute({ dst: '10.244.1.7', gateway: '198.19.1.1', dev: 'rk0', flags: ['onlink'] })?.line,
    ).toBe('route replace 10.244.1.7/32 via 198.19.1.1 dev rk0 onlink proto 221');
  });

  it('copies every next hop of a multipath route, with weights', () => {
    expect(
      mirrorRoute({
        dst: 'fd00:10::/122',
        nexthops: [
          { gateway: 'fe80::1', dev: 'rk0', weight: 1 },
          { gateway: 'fe80::2', dev: 'rk1', weight: 2 },
        ],
      })?.line,
    ).toBe(
      'route replace fd00:10::/122 proto 221 nexthop via fe80::1 dev rk0 weight 1 nexthop via fe80::2 dev rk1 weight 2',
    );
  });

  it('copies no blackhole, unreachable or default route, nor one without a next hop', () => {
    expect(mirrorRoute({ dst: '10.244.1.0/26', type: 'blackhole' })).toBeUndefined();
    expect(mirrorRoute({ dst: '10.244.1.0/26', type: 'unreachable' })).toBeUndefined();
    expect(mirrorRoute({ dst: 'default', gateway: '198.19.1.1', dev: 'rk0' })).toBeUndefined();
    expect(mirrorRoute({ dst: '10.244.1.0/26' })).toBeUndefined();
  });
});
