// CRDs the operator depends on. The NetworkAttachmentDefinition CRD is installed when absent (a
// cluster without Multus); when Multus or anyone installed it, we leave theirs alone. The
// ClusterNetwork CRD is the installer's job (Helm, kubectl); we only say clearly when it is missing.
import { ClusterNetworkResource } from '../src/api/group.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { CRD_DIR, loadYamlObjects, waitEstablished } from '../src/kube/crds.ts';
import { Builtin, type Resource } from '../src/kube/resource.ts';
import type { Logger } from '../src/log/logger.ts';

export const NAD_CRD_NAME = 'network-attachment-definitions.k8s.cni.cncf.io';

export function crdName(r: Resource): string {
  return `${r.plural}.${r.group}`;
}

export async function ensureNadCrd(kube: KubeClient, logger: Logger): Promise<void> {
  if (await kube.getOrUndefined(Builtin.CustomResourceDefinition, NAD_CRD_NAME)) return;
  const crd = loadYamlObjects(CRD_DIR).find(
    (o) => o.kind === 'CustomResourceDefinition' && o.metadata.name === NAD_CRD_NAME,
  );
  if (!crd)
    throw new Error(
      `the NetworkAttachmentDefinition CRD is missing from ${CRD_DIR}; the installation is incomplete`,
    );
  await kube.apply(Builtin.CustomResourceDefinition, crd);
  await waitEstablished(kube, NAD_CRD_NAME);
  logger.info({ crd: NAD_CRD_NAME }, 'installed the NetworkAttachmentDefinition CRD (none was present)');
}

/** Logs a clear error while the ClusterNetwork CRD is missing; resolves once it exists or the signal aborts. */
export async function waitForClusterNetworkCrd(
  kube: KubeClient,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  const name = crdName(ClusterNetworkResource);
  let warned = false;
  while (!signal.aborted) {
    if (await kube.getOrUndefined(Builtin.CustomResourceDefinition, name)) return;
    if (!warned)
      logger.error(
        { crd: name },
        `CRD ${name} is not installed: install it (kubectl apply -f crds/ or the Helm chart); waiting`,
      );
    warned = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}
