import { errors } from 'undici';
import { describe, expect, it } from 'vitest';
import { CommandTimeoutError, ProcessBusyError } from '../src/dataplane/exec.ts';
import { StaticIPOutOfPoolError, PoolExhaustedError } from '../src/ipam/errors.ts';
import type { NetConf } from '../src/cni/types.ts';
import type { AttachmentRef, NodeIpam } from '../src/ipam/types.ts';
import { createLogger } from '../src/log/logger.ts';
import { CniService, toCniError, type CniServiceDeps } from './cni.ts';

describe('toCniError', () => {
  it('keeps the CNI code an IPAM error declares', () => {
    expect(toCniError(new StaticIPOutOfPoolError('10.99.0.1', 'p'), 'ADD').code).toBe(7);
    expect(toCniError(new PoolExhaustedError('p', '10.0.0.0/24'), 'ADD').code).toBe(11);
  });
  it('answers an API server that does not answer in time with 11, not 999', () => {
    expect(toCniError(new errors.HeadersTimeoutError(), 'ADD').code).toBe(11);
    expect(toCniError(new errors.ConnectTimeoutError(), 'ADD').code).toBe(11);
    expect(toCniError(new errors.BodyTimeoutError(), 'ADD').code).toBe(11);
    expect(toCniError(new errors.SocketError('closed'), 'ADD').code).toBe(11);
  });
  it('answers an overloaded or stuck data plane with 11', () => {
    expect(toCniError(new ProcessBusyError('ip'), 'ADD').code).toBe(11);
    expect(toCniError(new CommandTimeoutError('ip -batch -', 15_000), 'ADD').code).toBe(11);
  });
});

describe('CniService GC', () => {
  function service() {
    const calls: { valid: string[]; pools: string[]; network?: string }[] = [];
    const ipam = {
      gc: (valid: AttachmentRef[], _grace?: number, inPool?: (p: string) => boolean, network?: string) => {
        calls.push({
          valid: valid.map((v) => `${v.containerID}/${v.interface}`),
          pools: ['attachment:mv', 'attachment:other', 'default-v4'].filter((p) => inPool?.(p) ?? true),
          ...(network ? { network } : {}),
        });
        return Promise.resolve(0);
      },
    } as unknown as NodeIpam;
    const svc = new CniService({
      ipam,
      networkName: 'trellis',
      gcGraceMs: 0,
      log: createLogger('test', 'silent'),
    } as unknown as CniServiceDeps);
    return { svc, calls };
  }
  const valid = [{ containerID: 'c1', ifname: 'net1' }];

  it('in IPAM mode collects only that attachment network: its pool, its name, its valid list', async () => {
    const { svc, calls } = service();
    await svc.gc(
      {
        cniVersion: '1.1.0',
        name: 'mv',
        type: 'macvlan',
        ipam: { type: 'trellis', pool: 'mv' },
        'cni.dev/valid-attachments': valid,
      } as NetConf,
      true,
    );
    expect(calls).toEqual([{ valid: ['c1/net1'], pools: ['attachment:mv'], network: 'mv' }]);
  });

  it('in plugin mode for another network releases nothing (its list says nothing about ours)', async () => {
    const { svc, calls } = service();
    await svc.gc(
      { cniVersion: '1.1.0', name: 'mv', type: 'trellis', 'cni.dev/valid-attachments': valid } as NetConf,
      false,
    );
    expect(calls).toEqual([]);
  });

  it('asks for the valid list in either key the spec has used', async () => {
    const { svc } = service();
    const err = await svc
      .gc({ cniVersion: '1.1.0', name: 'mv', type: 'macvlan' } as NetConf, true)
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/cni.dev\/valid-attachments/);
  });
});
