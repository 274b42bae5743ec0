// Node objects for tests and benchmarks that run an agent without a kubelet: the agent reads its
// node's InternalIP from the API. No vitest import, so benchmarks can use it too.
import type { KubeClient } from '../../src/kube/client.ts';
import { Builtin } from '../../src/kube/resource.ts';

/** Creates (or updates) a Node with one InternalIP address. */
export async function setNode(kube: KubeClient, node: string, ip: string): Promise<void> {
  await kube.apply(Builtin.Node, { apiVersion: 'v1', kind: 'Node', metadata: { name: node } });
  await kube.apply(
    Builtin.Node,
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: node },
      status: { addresses: [{ type: 'InternalIP', address: ip }] },
    },
    {},
    'status',
  );
}
