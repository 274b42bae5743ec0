// Every rendered object is accepted by the real API server (server-side apply, dry run), and the
// rendered agent RBAC grants exactly what the agent needs, as the API server's authorizer judges it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin, type Resource } from '../../src/kube/resource.ts';
import { sampleClusterNetwork } from '../../src/render/fixtures.ts';
import { renderClusterNetwork } from '../../src/render/index.ts';
import { allowed as authorized } from '../support/access.ts';
import { adminClient, eventually, uniqueName } from '../support/kube.ts';

let kube: KubeClient;
const cleanup: [Resource, string, string?][] = [];

beforeAll(async () => {
  kube = await adminClient();
  await installCrds(kube);
});

afterAll(async () => {
  for (const [r, name, ns] of cleanup.reverse()) await kube.delete(r, name, ns);
  await kube.close();
});

function resourceOf(o: KubeObject): Resource {
  const r = Object.values(Builtin).find(
    (b) => b.kind === o.kind && (b.group ? `${b.group}/${b.version}` : b.version) === o.apiVersion,
  );
  if (!r) throw new Error(`no Resource for ${o.apiVersion} ${o.kind}`);
  return r;
}

async function namespace(prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  await kube.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  cleanup.push([Builtin.Namespace, name]);
  return name;
}

/** The render tests' sample with every attachment in `attachmentNs`, an MTU and agent settings. */
function clusterNetwork(name: string, attachmentNs: string): ClusterNetwork {
  const cn = sampleClusterNetwork(name, {
    backend: { mode: 'vxlan', vni: 4096, port: 4789, mtu: 1400 },
    agent: { logLevel: 'debug', nodeSelector: { 'node-role.kubernetes.io/worker': '' } },
  });
  cn.spec!.attachments = cn.spec!.attachments!.map((a) => ({ ...a, namespace: attachmentNs }));
  return cn;
}

describe('rendered objects on the real API server', () => {
  it('every object passes server-side apply in dry-run mode', async () => {
    const ns = await namespace('render');
    const attachNs = await namespace('render-att');
    const objs = renderClusterNetwork(clusterNetwork(uniqueName('cn'), attachNs), { namespace: ns });
    expect(objs.map((o) => o.kind)).toEqual([
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
      'ConfigMap',
      'DaemonSet',
      'NetworkAttachmentDefinition',
      'NetworkAttachmentDefinition',
      'NetworkAttachmentDefinition',
      'NetworkAttachmentDefinition',
    ]);
    for (const o of objs) {
      const answer = await kube.apply<KubeObject>(resourceOf(o), o, { dryRun: true });
      expect(answer.metadata.name, `${o.kind} ${o.metadata.name}`).toBe(o.metadata.name);
      // Nothing was stored.
      expect(await kube.getOrUndefined(resourceOf(o), o.metadata.name, o.metadata.namespace)).toBeUndefined();
    }
  });

  it('the DaemonSet round-trips: what the server stores is what was rendered (no field dropped)', async () => {
    const ns = await namespace('render-ds');
    const objs = renderClusterNetwork(clusterNetwork(uniqueName('cn'), 'default'), { namespace: ns });
    const ds = objs.find((o) => o.kind === 'DaemonSet')!;
    const stored = await kube.apply<KubeObject>(Builtin.DaemonSet, ds, { dryRun: true });
    expect(stored.spec).toMatchObject(ds.spec as object);
  });

  it('the agent ClusterRole grants what the agent needs and nothing more', async () => {
    const ns = await namespace('render-rbac');
    const cnName = uniqueName('cn');
    const objs = renderClusterNetwork(clusterNetwork(cnName, 'default'), { namespace: ns });
    for (const o of objs.filter((x) =>
      ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(x.kind),
    )) {
      await kube.apply(resourceOf(o), o);
      if (o.kind !== 'ServiceAccount') cleanup.push([resourceOf(o), o.metadata.name]);
    }
    const sa = objs.find((o) => o.kind === 'ServiceAccount')!.metadata.name;
    const user = `system:serviceaccount:${ns}:${sa}`;
    const groups = ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'];
    const can = (verb: string, group: string, resource: string, subresource?: string, name?: string) =>
      authorized(kube, user, groups, {
        verb,
        group,
        resource,
        subresource,
        name,
        namespace: resource === 'pods' || resource === 'events' ? 'default' : '',
      });
    const trellis = 'network.trellis.dev';
    const allowed: [string, string, string, string?, string?][] = [
      ['watch', '', 'nodes'],
      ['list', '', 'pods'],
      ['create', '', 'events'],
      ['watch', trellis, 'clusternetworks', '', cnName],
      ['get', trellis, 'clusternetworks', '', cnName],
      ['create', trellis, 'ipblocks'],
      ['update', trellis, 'ipblocks'],
      ['create', trellis, 'nodenetworkstatuses'],
      ['patch', trellis, 'nodenetworkstatuses', 'status'],
      // extra networks: network-status on pods; NADs, MultiNetworkPolicies, namespaces watched
      ['patch', '', 'pods'],
      ['list', 'k8s.cni.cncf.io', 'network-attachment-definitions'],
      ['watch', 'k8s.cni.cncf.io', 'multi-networkpolicies'],
      ['list', '', 'namespaces'],
    ];
    const denied: [string, string, string, string?, string?][] = [
      ['get', '', 'secrets'],
      ['update', '', 'nodes'],
      ['delete', '', 'pods'],
      ['update', '', 'pods'],
      ['create', 'events.k8s.io', 'events'],
      ['list', trellis, 'clusternetworks'],
      ['get', trellis, 'clusternetworks', '', 'another'],
      ['update', trellis, 'clusternetworks', '', cnName],
      ['update', trellis, 'clusternetworks', 'status', cnName],
      ['delete', trellis, 'ipblocks'],
      ['patch', trellis, 'ipblocks'],
      ['create', 'k8s.cni.cncf.io', 'network-attachment-definitions'],
      ['create', 'apps', 'daemonsets'],
    ];
    // The API server's RBAC authorizer reads roles and bindings from its own watch cache: a just
    // created binding takes effect a moment later (seen once in CI), so wait for it first.
    await eventually(
      async () => (await can('watch', '', 'nodes')) || undefined,
      'the RBAC authorizer to see the new ClusterRoleBinding',
      10_000,
    );
    for (const [verb, group, resource, sub, name] of allowed) {
      expect(
        await can(verb, group, resource, sub, name),
        `${verb} ${group}/${resource}/${sub ?? ''} ${name ?? ''}`,
      ).toBe(true);
    }
    for (const [verb, group, resource, sub, name] of denied) {
      expect(
        await can(verb, group, resource, sub, name),
        `${verb} ${group}/${resource}/${sub ?? ''} ${name ?? ''}`,
      ).toBe(false);
    }
  });
});
