// Per-node agent credentials the way a real cluster has them: a ServiceAccount token from the
// TokenRequest API, bound to an object that names the node. The API server then authenticates the
// token with the extra `authentication.kubernetes.io/node-name`, which the agent admission policy
// uses to hold each agent to its own node's objects. On a real cluster the kubelet requests the
// token bound to the agent's Pod (same extra, since 1.30); the lab has no agent Pods, so it binds
// the token to the Node object.
import { readFileSync, writeFileSync } from 'node:fs';
import type { KubeClient } from '../kube/client.ts';
import type { KubeObject } from '../kube/object.ts';
import { Builtin } from '../kube/resource.ts';

export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

/** A token for namespace/serviceAccount bound to the Node (invalid once that Node object is gone). */
export async function nodeBoundToken(
  kube: KubeClient,
  namespace: string,
  serviceAccount: string,
  node: string,
  expirationSeconds = 7 * 24 * 3600,
): Promise<string> {
  const n = await kube.get<KubeObject>(Builtin.Node, node);
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`;
  const res = await kube.request<{ status?: { token?: string } }>('POST', path, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: {
      expirationSeconds,
      boundObjectRef: { apiVersion: 'v1', kind: 'Node', name: node, uid: n.metadata.uid },
    },
  });
  const token = res.status?.token;
  if (!token)
    throw new Error(
      `TokenRequest for ${namespace}/${serviceAccount} bound to node ${node} returned no token`,
    );
  return token;
}

/** Writes a copy of a kubeconfig (same cluster and CA) that authenticates with a bearer token. */
export function writeTokenKubeconfig(from: string, to: string, user: string, token: string): string {
  const cfg = JSON.parse(readFileSync(from, 'utf8')) as {
    users: { name: string; user: Record<string, string> }[];
    contexts: { name: string; context: { cluster: string; user: string } }[];
  };
  cfg.users = [{ name: user, user: { token } }];
  for (const c of cfg.contexts) c.context.user = user;
  writeFileSync(to, JSON.stringify(cfg, null, 2), { mode: 0o600 });
  return to;
}
