import { describe, expect, it } from 'vitest';
import { interfaceNameProblem, validateConfig, validateEnv } from './validate.ts';

const env = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0',
  ...over,
});
const conf = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  cniVersion: '1.0.0',
  name: 'trellis',
  type: 'trellis',
  mtu: 1450,
  ...over,
});

function codeOf(fn: () => unknown): { code: number; message: string } {
  try {
    fn();
  } catch (err: unknown) {
    return err as { code: number; message: string };
  }
  throw new Error('expected a CNI error');
}

describe('interface names', () => {
  it('follows the kernel and libcni rules', () => {
    expect(interfaceNameProblem('eth0')).toBeUndefined();
    expect(interfaceNameProblem('net1.100')).toBeUndefined();
    expect(interfaceNameProblem('a'.repeat(15))).toBeUndefined();
    for (const bad of [
      '',
      '.',
      '..',
      'a'.repeat(16),
      'a/b',
      'a:b',
      'a b',
      'a\nb',
      'a\tb',
      'é1',
      'a#b',
      "a'b",
      'a"b',
      'a\\b',
    ])
      expect(interfaceNameProblem(bad), JSON.stringify(bad)).toBeDefined();
  });
});

describe('validateEnv', () => {
  it('accepts a runtime environment', () => {
    expect(validateEnv(env())).toMatchObject({ CNI_COMMAND: 'ADD', CNI_IFNAME: 'eth0' });
  });
  it('refuses hostile or malformed fields with code 4 naming the field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ CNI_IFNAME: 'eth0\nlink del lo' }, 'CNI_IFNAME'],
      [{ CNI_IFNAME: 'eth0-far-too-long' }, 'CNI_IFNAME'],
      [{ CNI_CONTAINERID: 'x;rm -rf /' }, 'CNI_CONTAINERID'],
      [{ CNI_CONTAINERID: '-x' }, 'CNI_CONTAINERID'],
      [{ CNI_NETNS: 'relative/path' }, 'CNI_NETNS'],
      [{ CNI_NETNS: undefined }, 'CNI_NETNS'],
      [{ CNI_ARGS: 'K8S_POD_NAME=Bad_Name' }, 'K8S_POD_NAME'],
      [{ CNI_ARGS: 'K8S_POD_NAMESPACE=a.b' }, 'K8S_POD_NAMESPACE'],
      [{ CNI_COMMAND: 'EXPLODE' }, 'CNI_COMMAND'],
      [{ CNI_IFNAME: 42 }, 'CNI_IFNAME'],
    ];
    for (const [over, field] of cases) {
      const e = codeOf(() => validateEnv(env(over)));
      expect(e.code, JSON.stringify(over)).toBe(4);
      expect(e.message).toContain(field);
    }
  });
  it('needs only what each verb needs', () => {
    expect(validateEnv({ CNI_COMMAND: 'GC' })).toEqual({ CNI_COMMAND: 'GC' });
    expect(validateEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'a', CNI_IFNAME: 'eth0' })).toBeTruthy();
  });
});

describe('validateConfig', () => {
  it('accepts the conflist entry the operator renders', () => {
    expect(validateConfig(conf()).mtu).toBe(1450);
  });
  it('refuses every malformed field with code 7 naming it', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ mtu: '1450\nTRELLIS_POD\ntouch /tmp/pwned' }, 'mtu'],
      [{ mtu: 1450.5 }, 'mtu'],
      [{ mtu: 10 }, 'mtu'],
      [{ mtu: 70000 }, 'mtu'],
      [{ name: 'bad name' }, 'name'],
      [{ runtimeConfig: { ips: ['10.0.0.1', 'not-an-ip'] } }, 'runtimeConfig.ips[1]'],
      [{ runtimeConfig: { mac: 'zz:zz' } }, 'runtimeConfig.mac'],
      [{ prevResult: { ips: [{ address: '10.0.0.1' }] } }, 'prevResult.ips[0].address'],
      [{ prevResult: { routes: [{ dst: '0.0.0.0/0', gw: 'x' }] } }, 'prevResult.routes[0].gw'],
      [{ ipam: { type: 'trellis', pool: 'A B' } }, 'ipam.pool'],
      [{ 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'a/b' }] }, 'valid-attachments[0].ifname'],
      [{ socket: 5 }, 'socket'],
      [{ timeoutSeconds: 1000 }, 'timeoutSeconds'],
    ];
    for (const [over, field] of cases) {
      const e = codeOf(() => validateConfig(conf(over)));
      expect(e.code, JSON.stringify(over)).toBe(7);
      expect(e.message).toContain(field);
    }
  });
  it('keeps the version codes: 7 when missing, 1 when unsupported', () => {
    expect(codeOf(() => validateConfig(conf({ cniVersion: undefined }))).code).toBe(7);
    expect(codeOf(() => validateConfig(conf({ cniVersion: '9.9.9' }))).code).toBe(1);
    expect(codeOf(() => validateConfig([])).code).toBe(7);
  });
});
