// The Helm chart, rendered by the real `helm template` and applied (CRDs for real, the rest as a
// server-side dry run) to the real API server. Needs a helm binary: on PATH, in $TRELLIS_HELM, or
// in the cache, where `make setup` builds it (hack/build-tools.sh).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/controlplane/binaries.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { waitEstablished } from '../../src/kube/crds.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin, type Resource } from '../../src/kube/resource.ts';
import { ClusterNetworkResource } from '../../src/api/group.ts';
import { helmBinary } from '../support/helm.ts';
import { adminClient, uniqueName } from '../support/kube.ts';

const helm = helmBinary();

const Deployment: Resource = {
  group: 'apps',
  version: 'v1',
  plural: 'deployments',
  kind: 'Deployment',
  namespaced: true,
};
const Job: Resource = { group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job', namespaced: true };
const resources: Resource[] = [...Object.values(Builtin), Deployment, Job, ClusterNetworkResource];

function resourceOf(o: KubeObject): Resource {
  const r = resources.find(
    (b) => b.kind === o.kind && (b.group ? `${b.group}/${b.version}` : b.version) === o.apiVersion,
  );
  if (!r) throw new Error(`no Resource for ${o.apiVersion} ${o.kind}`);
  return r;
}

/** `helm template` with extra arguments (e.g. --set, --set-json), parsed into objects. */
function helmTemplate(namespace: string, args: string[]): KubeObject[] {
  const out = execFileSync(
    helm,
    [
      'template',
      'trellis',
      join(REPO_ROOT, 'charts', 'trellis'),
      '--namespace',
      namespace,
      '--include-crds',
      ...args,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return (loadAll(out) as (KubeObject | null)[]).filter((o): o is KubeObject => o !== null);
}

describe('the Helm chart (helm template + real API server)', () => {
  let kube: KubeClient;
  let ns: string;

  beforeAll(async () => {
    kube = await adminClient();
    ns = uniqueName('chart');
    await kube.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  });

  afterAll(async () => {
    await kube.delete(Builtin.Namespace, ns);
    await kube.close();
  });

  it('renders CRDs, the operator and its RBAC, and every object is accepted by the API server', async () => {
    const cnName = uniqueName('chartcn');
    const objs = helmTemplate(ns, [
      '--set',
      'clusterNetwork.enabled=true',
      '--set',
      `clusterNetwork.name=${cnName}`,
      '--set',
      'operator.replicas=2',
    ]);
    const kinds = objs.map((o) => o.kind);
    expect(kinds.filter((k) => k === 'CustomResourceDefinition').length).toBeGreaterThanOrEqual(2);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'ServiceAccount',
        'ClusterRole',
        'ClusterRoleBinding',
        'Role',
        'RoleBinding',
        'Deployment',
        'ClusterNetwork',
      ]),
    );

    // CRDs first, for real (as Helm does), so the ClusterNetwork can be judged by its schema.
    for (const crd of objs.filter((o) => o.kind === 'CustomResourceDefinition')) {
      await kube.apply(Builtin.CustomResourceDefinition, crd);
      await waitEstablished(kube, crd.metadata.name);
    }
    for (const o of objs.filter((x) => x.kind !== 'CustomResourceDefinition')) {
      const answer = await kube.apply<KubeObject>(resourceOf(o), o, { dryRun: true });
      expect(answer.metadata.name).toBe(o.metadata.name);
    }

    const deploy = objs.find((o) => o.kind === 'Deployment') as unknown as {
      metadata: { namespace: string };
      spec: {
        replicas: number;
        template: {
          spec: {
            serviceAccountName: string;
            containers: {
              command: string[];
              env: { name: string; valueFrom?: unknown }[];
              livenessProbe?: { httpGet: unknown };
              readinessProbe?: { httpGet: unknown };
              resources?: unknown;
            }[];
          };
        };
      };
    };
    expect(deploy.metadata.namespace).toBe(ns);
    expect(deploy.spec.replicas).toBe(2);
    expect(deploy.spec.template.spec.serviceAccountName).toBe('trellis-operator');
    const op = deploy.spec.template.spec.containers[0]!;
    expect(op.command).toEqual(['/usr/local/bin/trellis-operator']);
    // probed, bounded, and metrics on the node's address only (hostNetwork)
    expect(op.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(op.readinessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(op.resources).toMatchObject({
      requests: { cpu: '50m', memory: '96Mi' },
      limits: { memory: '256Mi' },
    });
    expect(op.env.find((e) => e.name === 'TRELLIS_METRICS_HOST')?.valueFrom).toEqual({
      fieldRef: { fieldPath: 'status.hostIP' },
    });
    // The env operator/config.ts reads.
    expect(deploy.spec.template.spec.containers[0]!.env.map((e) => e.name)).toEqual(
      expect.arrayContaining([
        'TRELLIS_NAMESPACE',
        'TRELLIS_IDENTITY',
        'TRELLIS_AGENT_IMAGE',
        'TRELLIS_LEADER_ELECT',
      ]),
    );
  });

  // What the chart's RBAC grants is checked with SubjectAccessReviews (which honour `*`, resourceNames
  // and Roles as the API server does) in render-chart-rbac.test.ts.
  it('creates no ClusterNetwork unless asked for', () => {
    expect(helmTemplate(ns, []).some((o) => o.kind === 'ClusterNetwork')).toBe(false);
  });

  it('a ClusterNetwork from values that the CRD rejects fails the install with the CEL message', async () => {
    const objs = helmTemplate(ns, [
      '--set',
      'clusterNetwork.enabled=true',
      '--set-json',
      'clusterNetwork.spec.pools=[{"name":"v4","cidr":"10.244.0.1/16"}]',
    ]);
    const cn = objs.find((o) => o.kind === 'ClusterNetwork')!;
    await expect(kube.apply(ClusterNetworkResource, cn, { dryRun: true })).rejects.toThrow(
      /has host bits set/,
    );
  });
});
