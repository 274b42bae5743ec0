import { describe, expect, it } from 'vitest';
import { Builtin } from '../../src/kube/resource.ts';
import { isApiError } from '../../src/kube/errors.ts';
import { adminClient, uniqueName } from '../support/kube.ts';

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
