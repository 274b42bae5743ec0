// Whereabouts as a benchmark peer: the binary (built once from its Go module by build.sh, cached
// outside git) and its CRDs (from the module source the build leaves in the Go module cache).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { KubeClient } from '../../../src/kube/client.ts';
import { installCrds } from '../../../src/kube/crds.ts';

/** Builds (or finds) the plugin; answers its path. */
export function whereaboutsBinary(): string {
  return execFileSync('bash', [resolve('test/bench/whereabouts/build.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .at(-1)!;
}

function moduleDir(): string {
  const base = join(process.env.HOME ?? '/root', 'go/pkg/mod/github.com/k8snetworkplumbingwg');
  const dirs = readdirSync(base).filter((d) => d.startsWith('whereabouts@'));
  if (dirs.length === 0) throw new Error(`no whereabouts module in ${base}`);
  return join(base, dirs.sort().at(-1)!);
}

/** Installs Whereabouts' CRDs (copied to `work` first: the module cache holds other files too). */
export async function installWhereaboutsCrds(kube: KubeClient, work: string): Promise<void> {
  const src = join(moduleDir(), 'doc/crds');
  const dir = join(work, 'whereabouts-crds');
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(src).filter((f) => f.startsWith('whereabouts.cni.cncf.io_')))
    cpSync(join(src, f), join(dir, f));
  await installCrds(kube, dir);
}
