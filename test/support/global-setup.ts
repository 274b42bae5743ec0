// vitest globalSetup for the integration and e2e tiers: one real etcd + kube-apiserver per run,
// shared by every test file of the tier (files run one at a time; tests use unique names).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { REPO_ROOT } from '../../src/controlplane/binaries.ts';
import { startControlPlane, type ControlPlane } from '../../src/controlplane/controlplane.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    controlPlaneDir: string;
  }
}

let cp: ControlPlane | undefined;

export async function setup(project: TestProject): Promise<void> {
  // Per-process folder: several runs (developers, helpers) may share one machine.
  const dir = join(REPO_ROOT, '.cache', `controlplane-${project.name}-${process.pid}`);
  cp = await startControlPlane({ dir });
  project.provide('kubeconfig', cp.kubeconfig);
  project.provide('controlPlaneDir', dir);
}

export async function teardown(): Promise<void> {
  await cp?.stop();
  if (cp) rmSync(cp.dir, { recursive: true, force: true });
}
