import { describe, expect, it } from 'vitest';
import type { IPBlock } from '../api/ipam.ts';
import { allocation } from './fixtures.ts';
import { summarizePoolUsage } from './usage.ts';

const alloc = allocation();
const block = (pool: string, cidr: string, ips: string[]): IPBlock => ({
  apiVersion: 'network.trellis.dev/v1alpha1',
  kind: 'IPBlock',
  metadata: { name: `${pool}.${cidr}` },
  spec: { pool, cidr, allocations: Object.fromEntries(ips.map((ip) => [ip, alloc])) },
});

describe('pool usage for ClusterNetwork status', () => {
  it('counts usable capacity, allocations and blocks per pool, attachments included', () => {
    const cn = {
      spec: {
        pools: [
          { name: 'v4', cidr: '10.244.0.0/24', blockSize: 26 },
          { name: 'v6', cidr: 'fd00::/64' },
        ],
        backend: { mode: 'vxlan' as const },
        attachments: [
          {
            name: 'm',
            type: 'macvlan' as const,
            pool: {
              cidr: '192.168.1.0/24',
              rangeStart: '192.168.1.10',
              rangeEnd: '192.168.1.19',
              gateway: '192.168.1.10',
            },
          },
        ],
      },
    };
    const usage = summarizePoolUsage(cn, [
      block('v4', '10.244.0.0/26', ['10.244.0.1', '10.244.0.2']),
      block('v4', '10.244.0.64/26', ['10.244.0.64']),
      block('attachment:m', '192.168.1.0/26', ['192.168.1.11']),
      block('other', '10.0.0.0/26', ['10.0.0.1']),
    ]);
    expect(usage).toEqual([
      { name: 'v4', cidr: '10.244.0.0/24', capacity: 254, allocated: 3, blocks: 2 },
      { name: 'v6', cidr: 'fd00::/64', capacity: Number.MAX_SAFE_INTEGER, allocated: 0, blocks: 0 },
      { name: 'attachment:m', cidr: '192.168.1.0/24', capacity: 9, allocated: 1, blocks: 1 },
    ]);
  });

  it("counts only blocks inside the pool's CIDR (another ClusterNetwork may name a pool the same)", () => {
    const cn = {
      spec: {
        pools: [{ name: 'v4', cidr: '10.244.0.0/24', blockSize: 26 }],
        backend: { mode: 'vxlan' as const },
      },
    };
    const [v4] = summarizePoolUsage(cn, [
      block('v4', '10.244.0.0/26', ['10.244.0.1']),
      block('v4', '10.252.0.0/26', ['10.252.0.1', '10.252.0.2']),
    ]);
    expect(v4).toMatchObject({ allocated: 1, blocks: 1 });
  });
});
