import { describe, expect, it } from 'vitest';
import { formatIP, parseIP } from './cidr.ts';
import { blockFits, defaultPools, isUsable, poolsOf } from './pools.ts';
import { blockName, firstFree, newBlock, usableCount } from './block.ts';
import { assignStatics } from './allocator.ts';
import { allocation } from './fixtures.ts';

const spec = {
  pools: [
    { name: 'v4', cidr: '10.244.0.0/24', blockSize: 28 },
    { name: 'v6', cidr: 'fd00:10:244::/120' },
    { name: 'gpu', cidr: '10.250.0.0/24', nodeSelector: { matchLabels: { gpu: 'true' } } },
  ],
  attachments: [
    {
      name: 'sig-net',
      type: 'macvlan' as const,
      pool: {
        cidr: '192.168.10.0/24',
        rangeStart: '192.168.10.10',
        rangeEnd: '192.168.10.20',
        gateway: '192.168.10.1',
        exclude: ['192.168.10.12/31'],
      },
    },
  ],
};

describe('pools of a ClusterNetwork', () => {
  const pools = poolsOf(spec);

  it('derives pod and attachment pools with their block sizes', () => {
    expect(pools.map((p) => [p.name, p.kind, p.blockPrefix])).toEqual([
      ['v4', 'pod', 28],
      ['v6', 'pod', 122],
      ['gpu', 'pod', 26],
      ['attachment:sig-net', 'attachment', 26],
    ]);
  });

  it('never hands out the pool network or IPv4 broadcast, an attachment gateway, exclusions or out-of-range', () => {
    const [v4, , , att] = pools;
    expect(isUsable(v4!, parseIP('10.244.0.0').value)).toBe(false);
    expect(isUsable(v4!, parseIP('10.244.0.1').value)).toBe(true);
    expect(isUsable(v4!, parseIP('10.244.0.255').value)).toBe(false);
    const usable = [];
    for (let i = 0n; i < 256n; i++)
      if (isUsable(att!, parseIP('192.168.10.0').value + i))
        usable.push(formatIP(4, parseIP('192.168.10.0').value + i));
    expect(usable).toEqual([
      '192.168.10.10',
      '192.168.10.11',
      ...[14, 15, 16, 17, 18, 19, 20].map((n) => `192.168.10.${n}`),
    ]);
  });

  it('picks one pool per family for a node by nodeSelector', () => {
    expect(defaultPools(pools, {}).map((p) => p.name)).toEqual(['v4', 'v6']);
    const gpuOnly = poolsOf({ pools: [spec.pools[2]!] });
    expect(defaultPools(gpuOnly, {})).toEqual([]);
    expect(defaultPools(gpuOnly, { gpu: 'true' }).map((p) => p.name)).toEqual(['gpu']);
  });
});

describe('blocks', () => {
  const [v4, v6, , att] = poolsOf(spec);

  it('are named deterministically from pool and CIDR', () => {
    expect(newBlock(v4!, 0n, 'n1').metadata.name).toBe('v4.10-244-0-0-28');
    expect(newBlock(v6!, 1n, 'n1').metadata.name).toBe('v6.fd00-10-244--40-122');
    expect(newBlock(att!, 0n, undefined).metadata.name).toBe('attachment.sig-net.192-168-10-0-26');
    expect(blockName('v4', { family: 4, base: parseIP('10.244.0.16').value, prefix: 28 })).toBe(
      'v4.10-244-0-16-28',
    );
  });

  it('hand out the lowest free usable address, and none when full', () => {
    const b = newBlock(v4!, 0n, 'n1');
    expect(usableCount(v4!, b.spec!)).toBe(15);
    expect(firstFree(v4!, b.spec!)).toBe('10.244.0.1');
    const alloc = allocation();
    b.spec!.allocations['10.244.0.1'] = alloc;
    expect(firstFree(v4!, b.spec!)).toBe('10.244.0.2');
    for (let i = 2; i < 16; i++) b.spec!.allocations[`10.244.0.${i}`] = alloc;
    expect(firstFree(v4!, b.spec!)).toBeUndefined();
  });

  it('maps static IPs to the pool that holds them and refuses the rest', () => {
    const pools = poolsOf(spec);
    expect([...assignStatics(pools.slice(0, 2), ['10.244.0.77', 'FD00:10:244::9'])]).toEqual([
      ['v4', '10.244.0.77'],
      ['v6', 'fd00:10:244::9'],
    ]);
    expect(() => assignStatics(pools.slice(0, 1), ['10.99.0.1'])).toThrow(
      /static IP 10.99.0.1 is not a usable address of any requested pool \(v4 10.244.0.0\/24\)/,
    );
    expect(() => assignStatics(pools.slice(0, 1), ['10.244.0.0'])).toThrow(/not a usable address/);
    // Attachment statics may sit outside the dynamic range, never on the gateway or broadcast.
    const att = pools.slice(3);
    expect([...assignStatics(att, ['192.168.10.200'])]).toEqual([['attachment:sig-net', '192.168.10.200']]);
    expect(() => assignStatics(att, ['192.168.10.1'])).toThrow(/not a usable address/);
    expect(() => assignStatics(att, ['192.168.10.255'])).toThrow(/not a usable address/);
  });
});

describe('blockFits: a block is exactly one block of its pool', () => {
  const pools = poolsOf({
    pools: [
      { name: 'v4', cidr: '10.244.0.0/16', blockSize: 26 },
      { name: 'v6', cidr: 'fd00:10::/56' },
    ],
    attachments: [{ name: 'sig', type: 'macvlan', master: 'eth1', pool: { cidr: '192.168.50.0/24' } }],
  } as never);
  it('accepts aligned, block-sized CIDRs inside the pool', () => {
    expect(blockFits(pools, { pool: 'v4', cidr: '10.244.3.64/26' })).toBe(true);
    expect(blockFits(pools, { pool: 'v6', cidr: 'fd00:10::40/122' })).toBe(true);
    expect(blockFits(pools, { pool: 'attachment:sig', cidr: '192.168.50.192/26' })).toBe(true);
  });
  it('refuses what a compromised node could announce', () => {
    for (const [pool, cidr] of [
      ['v4', '0.0.0.0/1'],
      ['v4', '10.244.0.0/16'],
      ['v4', '10.245.0.0/26'],
      ['v4', '10.244.0.1/26'],
      ['v4', 'fd00:10::/122'],
      ['v4', 'garbage'],
      ['nope', '10.244.0.0/26'],
      ['v6', 'fd00:10::/120'],
    ])
      expect(blockFits(pools, { pool, cidr }), `${pool} ${cidr}`).toBe(false);
  });
});
