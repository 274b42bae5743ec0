import { describe, expect, it } from 'vitest';
import { CniError, CniErrorCode, isCniErrorJson } from './errors.ts';
import { parseCniArgs } from './types.ts';
import { assertSupportedVersion, convertResult } from './version.ts';
import { decodeAnswer, encodeAnswer } from './wire.ts';

describe('CniError', () => {
  it('crosses the wire intact: to the spec JSON and back', () => {
    const err = new CniError(CniErrorCode.TryAgainLater, 'agent busy', 'retry in 1s');
    const json = JSON.parse(JSON.stringify(err.toJSON('1.1.0'))) as unknown;
    expect(json).toEqual({ cniVersion: '1.1.0', code: 11, msg: 'agent busy', details: 'retry in 1s' });
    expect(isCniErrorJson(json)).toBe(true);
    const back = CniError.fromJSON(json as never);
    expect([back.code, back.message, back.details]).toEqual([11, 'agent busy', 'retry in 1s']);
  });

  it('turns unknown failures into code 999 keeping the message', () => {
    expect(CniError.from(new Error('boom'))).toMatchObject({ code: 999, message: 'boom' });
  });
});

describe('versions', () => {
  it('rejects an unknown version with code 1 and a missing one with code 7', () => {
    expect(() => assertSupportedVersion('2.0.0')).toThrow(expect.objectContaining({ code: 1 }));
    expect(() => assertSupportedVersion(undefined)).toThrow(expect.objectContaining({ code: 7 }));
    expect(assertSupportedVersion('1.0.0')).toBe('1.0.0');
  });

  it('converts a result: ips[].version before 1.0.0, no interface mtu before 1.1.0', () => {
    const r = {
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eth0', mac: '0a:00:00:00:00:01', mtu: 1450, sandbox: '/run/netns/x' }],
      ips: [
        { address: '10.0.0.1/32', interface: 0 },
        { address: 'fd00::1/128', interface: 0 },
      ],
    };
    expect(convertResult(r, '0.4.0').ips!.map((i) => i.version)).toEqual(['4', '6']);
    expect(convertResult(r, '1.0.0').interfaces![0]).not.toHaveProperty('mtu');
    expect(convertResult(r, '1.1.0').interfaces![0]!.mtu).toBe(1450);
    expect(convertResult(r, '1.0.0').cniVersion).toBe('1.0.0');
  });
});

describe('wire and args', () => {
  it('answers carry the exit code and the exact stdout', () => {
    const text = encodeAnswer({ exitCode: 1, stdout: '{"code":11}\nsecond line' });
    expect(decodeAnswer(text)).toEqual({ exitCode: 1, stdout: '{"code":11}\nsecond line' });
    expect(() => decodeAnswer('garbage')).toThrow(/malformed/);
  });

  it('parses CNI_ARGS pairs', () => {
    expect(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;junk')).toEqual({
      IgnoreUnknown: '1',
      K8S_POD_NAMESPACE: 'ns',
      K8S_POD_NAME: 'p',
    });
  });
});
