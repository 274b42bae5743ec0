// The chart's operator RBAC is enough and no more, for real: the operator process runs with a client
// certificate for the chart's ServiceAccount (bound only by the chart's ClusterRole/Role bindings),
// brings a ClusterNetwork to Ready (rendering and granting the agent's ClusterRole without
// bind/escalate), and cleans up on deletion. SubjectAccessReviews against the real authorizer check
// every verb the operator and the agent use, and a sample they must not have (so `*` and
// resourceNames count as the API server counts them). Needs helm, which `make setup` builds.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import { ClusterNetworkResource } from '../../src/api/group.ts';
import { REPO_ROOT } from '../../src/controlplane/binaries.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin, type Resource } from '../../src/kube/resource.ts';
import { helmBinary } from '../support/helm.ts';
import { granted, missing, verbs, type Access } from '../support/access.ts';
import { adminClient, eventually, kubeconfigAs, uniqueName } from '../support/kube.ts';

const helm = helmBinary();
const T = 'network.trellis.dev';

describe('the operator under the chart RBAC only', () => {
  let kube: KubeClient;
  let ns: string;
  let operator: ChildProcess | undefined;
  let logFile: string;
  const rbac: [Resource, KubeObject][] = [];

  beforeAll(async () => {
    kube = await adminClient();
    await installCrds(kube);
    ns = uniqueName('chart-op');
    await kube.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const out = execFileSync(
      helm,
      ['template', 'trellis', join(REPO_ROOT, 'charts', 'trellis'), '--namespace', ns],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const objs = (loadAll(out) as (KubeObject | null)[]).filter((o): o is KubeObject => o !== null);
    for (const o of objs) {
      const r = {
        ServiceAccount: Builtin.ServiceAccount,
        ClusterRole: Builtin.ClusterRole,
        ClusterRoleBinding: Builtin.ClusterRoleBinding,
        Role: Builtin.Role,
        RoleBinding: Builtin.RoleBinding,
      }[o.kind as 'ServiceAccount'];
      if (!r) continue;
      await kube.apply(r, o);
      rbac.push([r, o]);
    }
    expect(rbac.map(([, o]) => o.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'ServiceAccount',
    ]);

    // A client certificate for the chart's ServiceAccount, signed by the test control plane's CA.
    const user = `system:serviceaccount:${ns}:trellis-operator`;
    const dir = inject('controlPlaneDir');
    const kubeconfig = kubeconfigAs(ns, user, ['system:serviceaccounts', `system:serviceaccounts:${ns}`]);

    logFile = join(dir, `${ns}-operator.log`);
    const log = openSync(logFile, 'a');
    operator = spawn(
      join(REPO_ROOT, 'node_modules', '.bin', 'node'),
      [join(REPO_ROOT, 'operator', 'main.ts')],
      {
        env: {
          ...process.env,
          KUBECONFIG: kubeconfig,
          TRELLIS_NAMESPACE: ns,
          TRELLIS_LEADER_ELECT: 'true',
          TRELLIS_METRICS_PORT: '-1',
          TRELLIS_IDENTITY: `${ns}-0`,
        },
        stdio: ['ignore', log, log],
      },
    );
  });

  afterAll(async () => {
    operator?.kill('SIGKILL');
    for (const [r, o] of rbac.reverse())
      if (!o.metadata.namespace && o.metadata.name) await kube.delete(r, o.metadata.name);
    await kube.delete(Builtin.Namespace, ns);
    await kube.close();
  });

  it('grants the operator every verb its code uses, and not a sample it must not have', async () => {
    const user = `system:serviceaccount:${ns}:trellis-operator`;
    const groups = ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'];
    const crd = { group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' };
    const uses: Access[] = [
      ...verbs(['get', 'list', 'watch', 'update', 'patch'], { group: T, resource: 'clusternetworks' }),
      ...verbs(['update', 'patch'], { group: T, resource: 'clusternetworks', subresource: 'status' }),
      ...verbs(['get', 'list', 'watch', 'update', 'patch', 'delete'], { group: T, resource: 'ipblocks' }),
      ...verbs(['get', 'list', 'watch'], { group: T, resource: 'nodenetworkstatuses' }),
      ...verbs(['get', 'list', 'watch'], { group: '', resource: 'nodes' }),
      ...verbs(['get', 'list', 'watch'], { group: '', resource: 'pods' }),
      ...verbs(['create', 'patch'], { group: '', resource: 'events', namespace: 'default' }),
      ...verbs(['get', 'list', 'watch', 'create', 'patch', 'delete'], {
        group: 'apps',
        resource: 'daemonsets',
        namespace: ns,
      }),
      ...verbs(['get', 'list', 'watch', 'create', 'patch', 'delete'], {
        group: '',
        resource: 'configmaps',
        namespace: ns,
      }),
      ...verbs(['get', 'list', 'watch', 'create', 'patch', 'delete'], {
        group: '',
        resource: 'serviceaccounts',
        namespace: ns,
      }),
      ...verbs(['get', 'list', 'watch', 'create', 'patch', 'delete'], {
        group: 'rbac.authorization.k8s.io',
        resource: 'clusterroles',
      }),
      // the agent's Role for peer-password Secrets, granted by name: the operator holds get to grant it
      ...verbs(['get', 'list', 'watch', 'create', 'patch', 'delete'], {
        group: 'rbac.authorization.k8s.io',
        resource: 'roles',
        namespace: ns,
      }),
      ...verbs(['get', 'list', 'watch', 'create', 'patch', 'delete'], {
        group: 'rbac.authorization.k8s.io',
        resource: 'rolebindings',
        namespace: ns,
      }),
      { verb: 'get', group: '', resource: 'secrets', namespace: ns, name: 'tor-password' },
      ...verbs(['get', 'list', 'watch', 'create', 'patch', 'delete'], {
        group: 'admissionregistration.k8s.io',
        resource: 'validatingadmissionpolicies',
      }),
      ...verbs(['get', 'list', 'watch', 'create', 'patch', 'delete'], {
        group: 'k8s.cni.cncf.io',
        resource: 'network-attachment-definitions',
        namespace: 'tenant-a',
      }),
      { verb: 'get', ...crd, name: 'clusternetworks.network.trellis.dev' },
      { verb: 'get', ...crd, name: 'network-attachment-definitions.k8s.cni.cncf.io' },
      { verb: 'create', ...crd },
      { verb: 'patch', ...crd, name: 'network-attachment-definitions.k8s.cni.cncf.io' },
      { verb: 'get', group: '', resource: 'namespaces', name: ns },
      { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: ns },
      ...verbs(['get', 'update'], {
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: ns,
        name: 'trellis-operator',
      }),
    ];
    expect(await missing(kube, user, groups, uses)).toEqual([]);
    const mustNot: Access[] = [
      { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
      { verb: 'bind', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
      { verb: 'list', group: '', resource: 'secrets', namespace: ns },
      { verb: 'watch', group: '', resource: 'secrets', namespace: ns },
      { verb: 'get', group: '', resource: 'secrets', namespace: 'kube-system', name: 'x' },
      { verb: 'list', group: '', resource: 'secrets' },
      { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'roles', namespace: 'kube-system' },
      { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'roles', namespace: ns },
      { verb: 'bind', group: 'rbac.authorization.k8s.io', resource: 'roles', namespace: ns },
      { verb: 'list', group: '', resource: 'configmaps' },
      { verb: 'create', group: 'apps', resource: 'daemonsets', namespace: 'kube-system' },
      { verb: 'patch', group: '', resource: 'serviceaccounts', namespace: 'kube-system' },
      {
        verb: 'update',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: ns,
        name: 'someone-else',
      },
      { verb: 'patch', ...crd, name: 'clusternetworks.network.trellis.dev' },
      { verb: 'delete', ...crd, name: 'network-attachment-definitions.k8s.cni.cncf.io' },
      { verb: 'list', ...crd },
      { verb: 'create', group: '', resource: 'namespaces' },
      { verb: 'get', group: '', resource: 'namespaces', name: 'kube-system' },
      { verb: 'delete', group: T, resource: 'clusternetworks' },
      { verb: 'create', group: '', resource: 'pods', namespace: ns },
      { verb: 'impersonate', group: '', resource: 'serviceaccounts' },
    ];
    expect(await granted(kube, user, groups, mustNot)).toEqual([]);
  });

  it('brings a ClusterNetwork to Ready, renders the agent, and cleans up on deletion', async () => {
    const name = uniqueName('chartcn');
    await kube.create(ClusterNetworkResource, {
      apiVersion: 'network.trellis.dev/v1alpha1',
      kind: 'ClusterNetwork',
      metadata: { name },
      spec: {
        pools: [{ name: 'v4', cidr: '10.251.0.0/16' }],
        attachments: [
          { name: `${name}-att`, namespace: ns, type: 'bridge', pool: { cidr: '192.168.251.0/24' } },
        ],
      },
    } as KubeObject);
    const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : '');
    const ready = await eventually(
      async () => {
        const cn = await kube.get<ClusterNetwork>(ClusterNetworkResource, name);
        const c = cn.status?.conditions?.find((x) => x.type === 'Ready');
        return c?.status === 'True' && cn.status?.observedGeneration === cn.metadata.generation
          ? cn
          : undefined;
      },
      `ClusterNetwork ${name} Ready under the chart's RBAC`,
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\noperator log:\n${log()}`);
    });
    expect(ready.metadata.finalizers?.length).toBeGreaterThan(0);
    const ds = await kube.get(Builtin.DaemonSet, `trellis-agent-${name}`, ns);
    expect(ds.metadata.labels?.['network.trellis.dev/cluster-network']).toBe(name);
    expect(await kube.getOrUndefined(Builtin.ClusterRole, `trellis-agent-${name}`)).toBeDefined();
    expect(await kube.getOrUndefined(Builtin.NetworkAttachmentDefinition, `${name}-att`, ns)).toBeDefined();

    // the agent's ClusterRole, as the operator granted it: what the agent code uses, nothing more
    const agentUser = `system:serviceaccount:${ns}:trellis-agent-${name}`;
    const agentGroups = ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'];
    const agentUses: Access[] = [
      ...verbs(['get', 'list', 'watch'], { group: '', resource: 'nodes' }),
      ...verbs(['get', 'list', 'watch'], { group: '', resource: 'pods' }),
      ...verbs(['list', 'watch'], { group: '', resource: 'namespaces' }),
      ...verbs(['list', 'watch'], { group: 'networking.k8s.io', resource: 'networkpolicies' }),
      { verb: 'create', group: '', resource: 'events', namespace: 'default' },
      ...verbs(['get', 'list', 'watch'], { group: T, resource: 'clusternetworks', name }),
      ...verbs(['get', 'list', 'watch', 'create', 'update'], { group: T, resource: 'ipblocks' }),
      ...verbs(['get', 'list', 'watch', 'create', 'patch'], { group: T, resource: 'nodenetworkstatuses' }),
      { verb: 'patch', group: T, resource: 'nodenetworkstatuses', subresource: 'status' },
      // extra networks: network-status on pods, NADs from a watch cache, MultiNetworkPolicy
      { verb: 'patch', group: '', resource: 'pods', namespace: 'default' },
      ...verbs(['list', 'watch'], { group: 'k8s.cni.cncf.io', resource: 'network-attachment-definitions' }),
      ...verbs(['list', 'watch'], { group: 'k8s.cni.cncf.io', resource: 'multi-networkpolicies' }),
      ...verbs(['list', 'watch'], { group: '', resource: 'namespaces' }),
    ];
    expect(await missing(kube, agentUser, agentGroups, agentUses)).toEqual([]);
    const agentMustNot: Access[] = [
      { verb: 'update', group: '', resource: 'pods', namespace: 'default' },
      { verb: 'delete', group: '', resource: 'pods', namespace: 'default' },
      {
        verb: 'create',
        group: 'k8s.cni.cncf.io',
        resource: 'network-attachment-definitions',
        namespace: 'default',
      },
      { verb: 'delete', group: T, resource: 'ipblocks' },
      { verb: 'patch', group: T, resource: 'ipblocks' },
      { verb: 'delete', group: T, resource: 'nodenetworkstatuses' },
      { verb: 'get', group: T, resource: 'clusternetworks', name: 'someone-elses' },
      { verb: 'list', group: T, resource: 'clusternetworks' },
      { verb: 'update', group: T, resource: 'clusternetworks', name },
      { verb: 'get', group: '', resource: 'secrets', namespace: ns },
      { verb: 'patch', group: '', resource: 'nodes' },
    ];
    expect(await granted(kube, agentUser, agentGroups, agentMustNot)).toEqual([]);
    expect(
      await kube.getOrUndefined(Builtin.ValidatingAdmissionPolicy, `trellis-agent-${name}`),
    ).toBeDefined();

    await kube.delete(ClusterNetworkResource, name);
    await eventually(
      async () => (await kube.getOrUndefined(ClusterNetworkResource, name)) === undefined,
      `ClusterNetwork ${name} deleted (finalizer removed by the operator)`,
      60_000,
    );
    expect(await kube.getOrUndefined(Builtin.DaemonSet, `trellis-agent-${name}`, ns)).toBeUndefined();
    expect(await kube.getOrUndefined(Builtin.ClusterRole, `trellis-agent-${name}`)).toBeUndefined();
    expect(
      await kube.getOrUndefined(Builtin.ValidatingAdmissionPolicy, `trellis-agent-${name}`),
    ).toBeUndefined();
  });
  it('lets the agent get only the peer-password Secrets a bgp ClusterNetwork names, through a Role the operator renders and prunes', async () => {
    const name = uniqueName('bgpcn');
    const spec = (peers: unknown[]) => ({
      pools: [{ name: 'v4', cidr: '10.252.0.0/16' }],
      backend: { mode: 'bgp', bgp: { asNumber: 64512, peers } },
    });
    await kube.create(ClusterNetworkResource, {
      apiVersion: 'network.trellis.dev/v1alpha1',
      kind: 'ClusterNetwork',
      metadata: { name },
      spec: spec([
        {
          address: '198.19.1.1',
          asNumber: 65001,
          password: { secretKeyRef: { name: 'tor-password', key: 'pw' } },
        },
      ]),
    } as KubeObject);
    const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : '');
    const role = await eventually(
      async () => kube.getOrUndefined(Builtin.Role, `trellis-agent-${name}`, ns),
      `the agent's Secret Role of ${name}, created by the operator under the chart's RBAC`,
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\noperator log:\n${log()}`);
    });
    expect((role as unknown as { rules: unknown }).rules).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['get'], resourceNames: ['tor-password'] },
    ]);
    const agentUser = `system:serviceaccount:${ns}:trellis-agent-${name}`;
    const agentGroups = ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'];
    await eventually(
      async () =>
        (
          await missing(kube, agentUser, agentGroups, [
            { verb: 'get', group: '', resource: 'secrets', namespace: ns, name: 'tor-password' },
          ])
        ).length === 0 || undefined,
      'the RoleBinding to take effect',
    );
    expect(
      await granted(kube, agentUser, agentGroups, [
        { verb: 'get', group: '', resource: 'secrets', namespace: ns, name: 'other' },
        { verb: 'list', group: '', resource: 'secrets', namespace: ns },
        { verb: 'watch', group: '', resource: 'secrets', namespace: ns },
        { verb: 'get', group: '', resource: 'secrets', namespace: 'default', name: 'tor-password' },
      ]),
    ).toEqual([]);
    // no password left: the Role and its binding are pruned
    await kube.mergePatch(ClusterNetworkResource, name, {
      spec: { backend: { bgp: { peers: [{ address: '198.19.1.1', asNumber: 65001 }] } } },
    });
    await eventually(
      async () =>
        ((await kube.getOrUndefined(Builtin.Role, `trellis-agent-${name}`, ns)) ??
        (await kube.getOrUndefined(Builtin.RoleBinding, `trellis-agent-${name}`, ns)))
          ? undefined
          : true,
      'the Role and RoleBinding pruned once no peer has a password',
      30_000,
    );
    await kube.delete(ClusterNetworkResource, name);
    await eventually(
      async () => (await kube.getOrUndefined(ClusterNetworkResource, name)) === undefined,
      `ClusterNetwork ${name} deleted`,
      60_000,
    );
  });
});
