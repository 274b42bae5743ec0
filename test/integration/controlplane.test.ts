import { describe, expect, it } from 'vitest';
import { Builtin } from '../../src/kube/resource.ts';
import { isApiError } from '../../src/kube/errors.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { adminClient, kubeconfigAs, uniqueName } from '../support/kube.ts';

describe('the real control plane', () => {
  it('serves the API with RBAC on: admin can create, an unbound user is forbidden', async () => {
    const kube = await adminClient();
    const name = uniqueName('smoke');
    const ns = await kube.create(Builtin.Namespace, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
    });
    expect(ns.metadata.uid).toBeTruthy();
    const cm = await kube.apply(Builtin.ConfigMap, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'x', namespace: name },
      data: { a: '1' },
    });
    expect(cm.metadata.managedFields?.length).toBeGreaterThan(0);

    // A real, authenticated identity with no RBAC binding: every request is refused with 403.
    const nobody = await KubeClient.fromKubeconfig(kubeconfigAs(uniqueName('nobody'), 'trellis-test-nobody'));
    try {
      const forbidden = (e: unknown) => isApiError(e, 403);
      await expect(nobody.get(Builtin.ConfigMap, 'x', name)).rejects.toSatisfy(forbidden);
      await expect(nobody.list(Builtin.ConfigMap, name)).rejects.toSatisfy(forbidden);
      await expect(
        nobody.create(Builtin.ConfigMap, {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'y', namespace: name },
        }),
      ).rejects.toSatisfy(forbidden);
    } finally {
      await nobody.close();
    }
    await kube.delete(Builtin.Namespace, name);
    await kube.close();
  });

  it('answers 404 for a missing object as a typed error', async () => {
    const kube = await adminClient();
    await expect(kube.get(Builtin.ConfigMap, 'nope', 'default')).rejects.toSatisfy((e: unknown) =>
      isApiError(e, 404),
    );
    await kube.close();
  });
});
