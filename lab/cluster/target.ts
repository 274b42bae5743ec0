// Which cluster a CLI command talks to, decided the way kubectl decides: --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config (or in-cluster config); --context picks a context. The lab's
// kubeconfig is used only when none of those is given and a lab is up, so `trellis status` works
// against any cluster and still needs no flag right after `make lab`.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../../src/kube/client.ts';
import { defaultStateDir, readState, type LabState } from '../state.ts';

export interface ClusterFlags {
  kubeconfig?: string;
  context?: string;
}

export interface ClusterTarget {
  /** The kubeconfig file read, or undefined for $KUBECONFIG / in-cluster defaults. */
  kubeconfig: string | undefined;
  context: string | undefined;
  /** Set when the target is this machine's lab (no flag, no $KUBECONFIG, a lab is up). */
  lab: LabState | undefined;
  /** Human description for headers and errors. */
  describe: string;
}

export function resolveTarget(
  flags: ClusterFlags,
  env: NodeJS.ProcessEnv = process.env,
  lab: LabState | undefined = readState(defaultStateDir()),
  home = homedir(),
): ClusterTarget {
  const context = flags.context;
  if (flags.kubeconfig) {
    if (!existsSync(flags.kubeconfig)) throw new Error(`--kubeconfig ${flags.kubeconfig} does not exist`);
    return {
      kubeconfig: flags.kubeconfig,
      context,
      lab: undefined,
      describe: `kubeconfig ${flags.kubeconfig}`,
    };
  }
  if (env.KUBECONFIG)
    return { kubeconfig: undefined, context, lab: undefined, describe: `KUBECONFIG=${env.KUBECONFIG}` };
  if (lab && !context)
    return { kubeconfig: lab.kubeconfig, context, lab, describe: `the lab (${lab.kubeconfig})` };
  const dflt = join(home, '.kube', 'config');
  if (existsSync(dflt)) return { kubeconfig: dflt, context, lab: undefined, describe: `kubeconfig ${dflt}` };
  if (env.KUBERNETES_SERVICE_HOST)
    return { kubeconfig: undefined, context, lab: undefined, describe: 'in-cluster config' };
  throw new Error(
    'no cluster to talk to: pass --kubeconfig FILE (and --context NAME), set KUBECONFIG, or bring a lab up with `make lab`',
  );
}

export async function withCluster<T>(
  target: ClusterTarget,
  fn: (kube: KubeClient) => Promise<T>,
): Promise<T> {
  const kube = await KubeClient.fromKubeconfig(target.kubeconfig, target.context);
  try {
    return await fn(kube);
  } finally {
    await kube.close();
  }
}
