// GIVEN nodes on two racks (two subnets) WHEN this node plans host-gw routes THEN peers on another
// rack are set apart by name (they are what BGP is for), instead of failing the whole route batch.
import { describe, expect, it } from 'vitest';
import type { PeerNode } from '../src/dataplane/peers.ts';
import { splitOnLink } from './plan.ts';
import { TYPICAL_KERNEL } from '../test/support/kernel.ts';
import { renderStatus } from './status.ts';

const peer = (name: string, nodeIP: string): PeerNode => ({ name, nodeIP, blocks: ['10.244.1.0/26'] });

describe('splitOnLink', () => {
  it('keeps peers on a connected subnet and sets apart the others', () => {
    const { onLink, offLink } = splitOnLink(
      [peer('node2', '198.19.1.12'), peer('node3', '198.19.2.11'), peer('v6', 'fd00::2')],
      [
        { local: '198.19.1.11', prefixlen: 24 },
        { local: '198.18.9.11', prefixlen: 24 },
        { local: '127.0.0.1', prefixlen: 8 },
      ],
    );
    expect(onLink.map((p) => p.name)).toEqual(['node2']);
    expect(offLink.map((p) => p.name)).toEqual(['node3', 'v6']);
  });

  it('reports the unreachable peers by name in a PeersReachable=False condition', () => {
    const s = renderStatus(
      'default',
      {
        ready: true,
        reason: 'Programmed',
        message: 'x',
        backend: 'host-gw',
        nodeIP: '198.19.1.11',
        mtu: 1500,
        clusterCidrs: [],
        ownBlocks: [],
        peers: 1,
        unreachablePeers: ['node3 (198.19.2.11)'],
      },
      TYPICAL_KERNEL,
      new Date(),
      new Date().toISOString(),
    );
    const c = s.conditions?.find((x) => x.type === 'PeersReachable');
    expect(c).toMatchObject({ status: 'False', reason: 'PeersOffSegment' });
    expect(c?.message).toContain('node3 (198.19.2.11)');
  });
});
