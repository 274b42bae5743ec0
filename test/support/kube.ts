// Helpers for tests against the real API server: a client from the provided kubeconfig, unique
// names, and polling until a condition holds (never fixed sleeps).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { ensurePki, issueClientCert } from '../../src/controlplane/pki.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export function kubeconfigPath(): string {
  return inject('kubeconfig');
}

export function adminClient(): Promise<KubeClient> {
  return KubeClient.fromKubeconfig(kubeconfigPath());
}

/**
 * A kubeconfig for a client-certificate user (CN=user, O=groups) signed by the test control plane's
 * CA: a real identity RBAC judges, with no binding unless the test makes one.
 */
export function kubeconfigAs(name: string, user: string, groups: string[] = []): string {
  const dir = inject('controlPlaneDir');
  const { cert, key } = issueClientCert(ensurePki(join(dir, 'pki')), name, user, groups);
  const cfg = JSON.parse(readFileSync(kubeconfigPath(), 'utf8')) as {
    users: { name: string; user: Record<string, string> }[];
  };
  cfg.users[0]!.user = {
    'client-certificate-data': readFileSync(cert).toString('base64'),
    'client-key-data': readFileSync(key).toString('base64'),
  };
  const path = join(dir, `${name}.kubeconfig`);
  writeFileSync(path, JSON.stringify(cfg), { mode: 0o600 });
  return path;
}

let counter = 0;
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid.toString(36)}-${counter}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Polls fn until it returns a value that is not undefined/false, or throws with the last error. */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err: unknown) {
      lastErr = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`,
  );
}
