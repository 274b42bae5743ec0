import { describe, expect, it } from 'vitest';
import {
  blockAt,
  blockCount,
  blockIndexOf,
  canonicalIP,
  contains,
  formatCidr,
  formatIP,
  nthAddress,
  overlaps,
  parseCidr,
  parseIP,
} from './cidr.ts';

describe('addresses', () => {
  it('round-trips IPv4 and IPv6 to canonical text', () => {
    expect(formatIP(4, parseIP('10.244.1.5').value)).toBe('10.244.1.5');
    expect(canonicalIP('FD00:0:0::01')).toBe('fd00::1');
    expect(canonicalIP('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalIP('::')).toBe('::');
    expect(canonicalIP('fd00:10:244:0:0:0:0:40')).toBe('fd00:10:244::40');
    expect(canonicalIP('1:2:3:4:5:6:7:8')).toBe('1:2:3:4:5:6:7:8');
  });

  it('rejects what is not an address, naming it', () => {
    expect(() => parseIP('10.0.0.256')).toThrow(/"10.0.0.256" is not an IPv4 or IPv6 address/);
    expect(() => parseIP('pod')).toThrow(/not an IPv4 or IPv6/);
  });
});

describe('CIDRs', () => {
  it('parses, refuses host bits with the network to use, and masks on request', () => {
    expect(formatCidr(parseCidr('10.244.0.0/16'))).toBe('10.244.0.0/16');
    expect(() => parseCidr('10.244.0.1/16')).toThrow(/host bits set: the network address is 10.244.0.0\/16/);
    expect(formatCidr(parseCidr('10.244.0.1/16', true))).toBe('10.244.0.0/16');
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/prefix length must be 0..32/);
    expect(() => parseCidr('10.0.0.0')).toThrow(/not a CIDR/);
  });

  it('answers containment and overlap per family', () => {
    const v4 = parseCidr('10.244.0.0/16');
    const v6 = parseCidr('fd00:10:244::/56');
    expect(contains(v4, '10.244.255.255')).toBe(true);
    expect(contains(v4, '10.245.0.0')).toBe(false);
    expect(contains(v4, 'fd00:10:244::1')).toBe(false);
    expect(contains(v6, 'fd00:10:244:ff::1')).toBe(true);
    expect(contains(v6, 'fd00:10:245::1')).toBe(false);
    expect(overlaps(v4, parseCidr('10.244.128.0/17'))).toBe(true);
    expect(overlaps(v4, parseCidr('10.245.0.0/16'))).toBe(false);
    expect(overlaps(v4, v6)).toBe(false);
  });

  it('carves blocks and finds the block of an address', () => {
    const pool = parseCidr('10.244.0.0/24');
    expect(blockCount(pool, 26)).toBe(4n);
    expect(formatCidr(blockAt(pool, 26, 3n))).toBe('10.244.0.192/26');
    expect(blockIndexOf(pool, 26, 4, parseIP('10.244.0.130').value)).toBe(2n);
    expect(blockIndexOf(pool, 26, 4, parseIP('10.245.0.1').value)).toBeUndefined();
    expect(() => blockCount(pool, 20)).toThrow(/block size \/20 does not fit pool 10.244.0.0\/24/);
    expect(() => blockAt(pool, 26, 4n)).toThrow(/outside/);
    const v6 = parseCidr('fd00:10:244::/56');
    expect(blockCount(v6, 122)).toBe(1n << 66n);
    expect(formatCidr(blockAt(v6, 122, 1n))).toBe('fd00:10:244::40/122');
    expect(formatIP(6, nthAddress(blockAt(v6, 122, 1n), 5n))).toBe('fd00:10:244::45');
  });
});
