import { describe, expect, it } from 'vitest';
import { cidrContainsIp, cidrsOverlap, parseCidr, parseIp } from './ip.ts';

describe('ip parsing', () => {
  it('parses IPv4 and IPv6 addresses strictly', () => {
    expect(parseIp('10.1.2.3')).toEqual({ family: 4, value: 0x0a010203n });
    expect(parseIp('::1')).toEqual({ family: 6, value: 1n });
    expect(parseIp('fd00::')?.value).toBe(0xfd00n << 112n);
    expect(parseIp('::ffff:10.0.0.1')?.value).toBe((0xffffn << 32n) | 0x0a000001n);
    for (const bad of [
      '10.1.2',
      '10.1.2.256',
      '01.1.1.1',
      '1::2::3',
      'fe80::1%eth0',
      '1:2:3:4:5:6:7:8:9',
      'x',
    ]) {
      expect(parseIp(bad), bad).toBeUndefined();
    }
  });

  it('parses CIDRs, clears host bits in network, and tests containment and overlap', () => {
    const c = parseCidr('10.244.1.7/16')!;
    expect(c.network).toBe(parseIp('10.244.0.0')!.value);
    expect(cidrContainsIp(c, parseIp('10.244.255.255')!)).toBe(true);
    expect(cidrContainsIp(c, parseIp('10.245.0.0')!)).toBe(false);
    expect(cidrContainsIp(c, parseIp('::1')!)).toBe(false);
    expect(cidrsOverlap(parseCidr('10.0.0.0/8')!, parseCidr('10.9.0.0/16')!)).toBe(true);
    expect(cidrsOverlap(parseCidr('10.9.0.0/16')!, parseCidr('10.0.0.0/8')!)).toBe(true);
    expect(cidrsOverlap(parseCidr('10.0.0.0/16')!, parseCidr('10.1.0.0/16')!)).toBe(false);
    expect(cidrsOverlap(parseCidr('fd00::/56')!, parseCidr('fd00:0:0:ff::/64')!)).toBe(true);
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
    expect(parseCidr('10.0.0.0')).toBeUndefined();
  });
});
