// Finds the Go-built kube-apiserver and etcd in the cache, building them on first use with
// hack/build-control-plane.sh (minutes cold, instant when cached).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export function cacheDir(): string {
  return process.env.TRELLIS_CACHE ?? join(homedir(), '.cache', 'trellis');
}

export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
}

export function ensureControlPlaneBinaries(): ControlPlaneBinaries {
  const bin = join(cacheDir(), 'bin');
  const bins = { etcd: join(bin, 'etcd'), kubeApiserver: join(bin, 'kube-apiserver') };
  if (existsSync(bins.etcd) && existsSync(bins.kubeApiserver)) return bins;
  const script = join(REPO_ROOT, 'hack', 'build-control-plane.sh');
  const res = spawnSync('bash', [script], { stdio: ['ignore', 2, 2] });
  if (res.status !== 0 || !existsSync(bins.etcd) || !existsSync(bins.kubeApiserver)) {
    throw new Error(`building the control plane failed (exit ${res.status}); run ${script} to see why`);
  }
  return bins;
}

/** kubectl built beside the control plane (same version), for tests and the lab's instructions. */
export function kubectlPath(): string {
  return join(cacheDir(), 'bin', 'kubectl');
}
