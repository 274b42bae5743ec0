// ClusterNetworks for admission tests against the real API server: an object with a unique name
// and any spec (the API server judges it, not the type), and the 422 message of one it refuses.
import { expect } from 'vitest';
import type { ClusterNetwork, ClusterNetworkSpec } from '../../src/api/clusternetwork.ts';
import { API_VERSION, ClusterNetworkResource } from '../../src/api/group.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { ApiError } from '../../src/kube/errors.ts';
import { uniqueName } from './kube.ts';

export function clusterNetworkObject(spec: unknown, prefix = 'cn'): ClusterNetwork {
  return {
    apiVersion: API_VERSION,
    kind: 'ClusterNetwork',
    metadata: { name: uniqueName(prefix) },
    spec: spec as ClusterNetworkSpec,
  };
}

/**
 * Creates the ClusterNetwork and returns the API server's rejection message. One it accepts fails
 * the test; its name goes to `created`, so the file's cleanup deletes it.
 */
export async function rejection(kube: KubeClient, obj: ClusterNetwork, created: string[]): Promise<string> {
  try {
    const accepted = await kube.create(ClusterNetworkResource, obj);
    created.push(accepted.metadata.name);
  } catch (err: unknown) {
    if (err instanceof ApiError) {
      expect(err.code).toBe(422);
      return (err.body as { message: string }).message;
    }
    throw err;
  }
  throw new Error(`accepted, but should have been rejected: ${JSON.stringify(obj.spec)}`);
}
