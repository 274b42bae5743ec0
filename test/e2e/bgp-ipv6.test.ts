// backend.mode bgp with IPv6 blocks, below the lab (which is IPv4 only): two node netns on one
// dual-stack link, each running real BIRD with the configuration the agent renders (iBGP mesh over
// the IPv4 session, IPv4 and IPv6 pools) and the agent's learned-route mirror. Each node installs
// the other's IPv4 AND IPv6 blocks in main as proto 221, IPv6 addresses in the blocks answer
// across, and a stopped speaker's blocks leave the other node in both families.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PEER_ROUTE_PROTO } from '../../src/dataplane/peers.ts';
import { planSessions, renderBirdConfig } from '../../src/routing/index.ts';
import { eventually } from '../support/kube.ts';
import { startRouteMirror } from '../support/route-mirror.ts';

const P = 'tb6';
const POOLS = ['10.245.0.0/16', 'fd00:10:245::/56'];
const NODES = [
  {
    name: 'a',
    ns: `${P}-a`,
    v4: '198.18.6.1',
    v6: 'fd99:6::1',
    blocks: ['10.245.1.0/26', 'fd00:10:245:1::/122'],
  },
  {
    name: 'b',
    ns: `${P}-b`,
    v4: '198.18.6.2',
    v6: 'fd99:6::2',
    blocks: ['10.245.2.0/26', 'fd00:10:245:2::/122'],
  },
];
const dir = mkdtempSync(join(tmpdir(), 'trellis-bgp6-'));

function ip(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
}

function cleanup(): void {
  for (const n of NODES) {
    const pids = spawnSync('ip', ['netns', 'pids', n.ns], { encoding: 'utf8' }).stdout.split('\n');
    for (const p of pids.filter(Boolean)) spawnSync('kill', ['-9', p]);
    spawnSync('ip', ['netns', 'del', n.ns]);
  }
}

/** The first address of a block (given to the node's loopback: what a pod there would have). */
function firstAddress(block: string): string {
  const [net] = block.split('/');
  return net!.includes(':') ? `${net}1` : net!.replace(/\.0$/, '.1');
}

describe('bgp with IPv6 blocks: the agent-rendered BIRD and the route mirror on a dual-stack link', () => {
  beforeAll(async () => {
    cleanup();
    for (const n of NODES) {
      execFileSync('ip', ['netns', 'add', n.ns]);
      ip(n.ns, 'link', 'set', 'lo', 'up');
    }
    execFileSync('ip', [
      'link',
      'add',
      `${P}x`,
      'netns',
      NODES[0]!.ns,
      'type',
      'veth',
      'peer',
      'name',
      `${P}y`,
      'netns',
      NODES[1]!.ns,
    ]);
    for (const [n, dev] of [
      [NODES[0]!, `${P}x`],
      [NODES[1]!, `${P}y`],
    ] as const) {
      ip(n.ns, 'link', 'set', dev, 'name', 'eth0');
      ip(n.ns, 'addr', 'add', `${n.v4}/24`, 'dev', 'eth0');
      ip(n.ns, 'addr', 'add', `${n.v6}/64`, 'dev', 'eth0', 'nodad');
      ip(n.ns, 'link', 'set', 'eth0', 'up');
      for (const b of n.blocks) ip(n.ns, 'addr', 'add', firstAddress(b), 'dev', 'lo');
    }
    // A node's NIC has long finished duplicate address detection. A fresh link's link-local address
    // stays tentative for up to 2 s, and the kernel sends no neighbour solicitation until it is
    // not: an early ping would then go unanswered although every route is in place.
    for (const n of NODES) {
      await eventually(
        async () => (ip(n.ns, '-6', 'addr', 'show', 'dev', 'eth0', 'tentative') === '' ? true : undefined),
        `node ${n.name}'s eth0 to finish duplicate address detection`,
        10_000,
      );
    }
    for (const n of NODES) {
      const conf = join(dir, `${n.name}.conf`);
      writeFileSync(
        conf,
        renderBirdConfig({
          node: n.name,
          clusterNetwork: 'dual',
          routerId: n.v4,
          asNumber: 64512,
          gracefulRestartSeconds: 120,
          ownBlocks: n.blocks,
          pools: POOLS,
          sessions: planSessions(
            { asNumber: 64512, nodeToNodeMesh: true },
            { name: n.name, labels: {}, address: n.v4 },
            NODES.map((o) => ({ name: o.name, address: o.v4 })),
          ),
        }),
      );
      spawn('ip', ['netns', 'exec', n.ns, 'bird', '-f', '-c', conf, '-s', join(dir, `${n.name}.ctl`)], {
        stdio: 'ignore',
        detached: true,
      }).unref();
      await startRouteMirror(n.ns);
    }
  });

  afterAll(() => {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("installs the other node's IPv4 and IPv6 blocks in main as proto 221, and IPv6 pod addresses answer across", async () => {
    const [a, b] = NODES as [(typeof NODES)[0], (typeof NODES)[0]];
    for (const [self, other] of [
      [a, b],
      [b, a],
    ] as const) {
      await eventually(
        async () => {
          const v4 = ip(self.ns, 'route', 'show', 'proto', String(PEER_ROUTE_PROTO));
          const v6 = ip(self.ns, '-6', 'route', 'show', 'proto', String(PEER_ROUTE_PROTO));
          return v4.includes(`${other.blocks[0]} via ${other.v4} dev eth0`) &&
            v6.includes(`${other.blocks[1]} via ${other.v6} dev eth0`)
            ? true
            : undefined;
        },
        `node ${self.name} to install node ${other.name}'s blocks in both families`,
        30_000,
      );
      expect(ip(self.ns, '-6', 'route', 'show', 'proto', 'bird')).toBe('');
    }
    const ping = spawnSync('ip', [
      'netns',
      'exec',
      b.ns,
      'ping',
      '-6',
      '-c',
      '1',
      '-W',
      '2',
      '-I',
      firstAddress(b.blocks[1]!),
      firstAddress(a.blocks[1]!),
    ]);
    expect(ping.status, ping.stdout.toString() + ping.stderr.toString()).toBe(0);
  });

  it("withdraws a stopped speaker's blocks of both families from the other node", async () => {
    const [a, b] = NODES as [(typeof NODES)[0], (typeof NODES)[0]];
    execFileSync('birdc', ['-s', join(dir, `${a.name}.ctl`), 'down']);
    await eventually(
      async () =>
        ip(b.ns, 'route', 'show', 'proto', String(PEER_ROUTE_PROTO)) === '' &&
        ip(b.ns, '-6', 'route', 'show', 'proto', String(PEER_ROUTE_PROTO)) === ''
          ? true
          : undefined,
      "node a's blocks to leave node b",
      30_000,
    );
  });
});
