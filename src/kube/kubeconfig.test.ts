import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inClusterAuth, loadKubeAuth, needsFullClient, parseKubeconfig } from './kubeconfig.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function write(name: string, config: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(config)); // JSON is YAML
  return path;
}

function config(user: Record<string, unknown>, cluster: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'a',
    contexts: [
      { name: 'a', context: { cluster: 'ca', user: 'ua' } },
      { name: 'b', context: { cluster: 'cb', user: 'ub' } },
    ],
    clusters: [
      {
        name: 'ca',
        cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64('CA'), ...cluster },
      },
      { name: 'cb', cluster: { server: 'https://b:6443', 'insecure-skip-tls-verify': true } },
    ],
    users: [
      { name: 'ua', user },
      { name: 'ub', user: { token: 'tok-b' } },
    ],
  };
}

describe('parseKubeconfig', () => {
  it('reads the current context: server, CA and client certificate from data fields', () => {
    const auth = parseKubeconfig(
      write('k', config({ 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') })),
    )!;
    expect(auth.server).toBe('https://10.0.0.1:6443');
    expect(auth.ca?.toString()).toBe('CA');
    expect(auth.cert?.toString()).toBe('CERT');
    expect(auth.key?.toString()).toBe('KEY');
    expect(auth.headers).toEqual({});
    expect(auth.skipTLSVerify).toBe(false);
  });

  it('reads files relative to the kubeconfig, and a token file', () => {
    mkdirSync(join(dir, 'pki'));
    writeFileSync(join(dir, 'pki', 'ca.crt'), 'CA-FILE');
    writeFileSync(join(dir, 'pki', 'c.crt'), 'CERT-FILE');
    writeFileSync(join(dir, 'pki', 'c.key'), 'KEY-FILE');
    writeFileSync(join(dir, 'token'), 'tok-file\n');
    const path = write(
      'k',
      config(
        { 'client-certificate': 'pki/c.crt', 'client-key': 'pki/c.key', tokenFile: join(dir, 'token') },
        { 'certificate-authority': 'pki/ca.crt', 'certificate-authority-data': undefined },
      ),
    );
    const auth = parseKubeconfig(path)!;
    expect(auth.ca?.toString()).toBe('CA-FILE');
    expect(auth.cert?.toString()).toBe('CERT-FILE');
    expect(auth.key?.toString()).toBe('KEY-FILE');
    expect(auth.headers).toEqual({ authorization: 'Bearer tok-file' });
  });

  it('selects a named context, and names the contexts there are when it is missing', () => {
    const path = write('k', config({ token: 'tok-a' }));
    const b = parseKubeconfig(path, 'b')!;
    expect(b).toMatchObject({ server: 'https://b:6443', skipTLSVerify: true });
    expect(b.headers).toEqual({ authorization: 'Bearer tok-b' });
    expect(() => parseKubeconfig(path, 'c')).toThrow('has no context "c" (it has: a, b)');
  });

  it('leaves exec plugins, auth providers and basic auth to client-node', () => {
    expect(parseKubeconfig(write('k', config({ exec: { command: 'aws' } })))).toBeUndefined();
    expect(needsFullClient({}, { 'auth-provider': { name: 'oidc' } })).toContain('auth-provider');
    expect(needsFullClient({}, { username: 'u', password: 'p' })).toContain('username');
    expect(needsFullClient({ 'proxy-url': 'http://p' }, { token: 't' })).toContain('proxy-url');
    expect(needsFullClient({}, { token: 't' })).toBeUndefined();
  });
});

describe('inClusterAuth', () => {
  it("uses the service account's token and CA and the service host and port", () => {
    writeFileSync(join(dir, 'token'), 'sa-token');
    writeFileSync(join(dir, 'ca.crt'), 'SA-CA');
    const saved = { ...process.env };
    process.env.KUBERNETES_SERVICE_HOST = 'fd00::1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    try {
      const auth = inClusterAuth(dir);
      expect(auth.server).toBe('https://[fd00::1]:443');
      expect(auth.headers).toEqual({ authorization: 'Bearer sa-token' });
      expect(auth.ca?.toString()).toBe('SA-CA');
    } finally {
      process.env = saved;
    }
  });
});

describe('loadKubeAuth', () => {
  it('falls back to client-node for what it does not read itself, with the same answer', async () => {
    // A basic-auth user goes through client-node; the server and CA still come out.
    const auth = await loadKubeAuth(write('k', config({ username: 'u', password: 'p' })));
    expect(auth.server).toBe('https://10.0.0.1:6443');
    expect(auth.ca?.toString()).toBe('CA');
  });
});
