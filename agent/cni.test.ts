import { errors } from 'undici';
import { describe, expect, it } from 'vitest';
import { CommandTimeoutError, ProcessBusyError } from '../src/dataplane/exec.ts';
import { StaticIPOutOfPoolError, PoolExhaustedError } from '../src/ipam/errors.ts';
import { toCniError } from './cni.ts';

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
