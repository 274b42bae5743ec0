// Rendering: deterministic bytes, the DaemonSet/conflist/NAD contract the agent and the lab rely
// on, and snapshots so any change to a rendered manifest shows up in review.
import { describe, expect, it } from 'vitest';
import type { BgpPeer, ClusterNetwork } from '../api/clusternetwork.ts';
import type { KubeObject } from '../kube/object.ts';
import { sampleClusterNetwork as clusterNetwork } from './fixtures.ts';
import { renderClusterNetwork } from './index.ts';
import { CONFLIST_HASH_ANNOTATION } from './names.ts';

type Env = { name: string; value?: string; valueFrom?: unknown };
interface DaemonSetShape {
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
      spec: {
        hostNetwork: boolean;
        serviceAccountName: string;
        nodeSelector: Record<string, string>;
        tolerations: unknown[];
        containers: {
          name: string;
          image: string;
          command: string[];
          env: Env[];
          securityContext: { privileged: boolean };
          resources?: unknown;
          livenessProbe: { httpGet: unknown };
          readinessProbe: { httpGet: unknown };
          volumeMounts: { name: string; mountPath: string; mountPropagation?: string }[];
        }[];
        volumes: { name: string; hostPath?: { path: string }; configMap?: { name: string } }[];
      };
    };
  };
}

function byKind(objs: KubeObject[], kind: string): KubeObject[] {
  return objs.filter((o) => o.kind === kind);
}

function daemonSet(objs: KubeObject[]): DaemonSetShape {
  return byKind(objs, 'DaemonSet')[0] as unknown as DaemonSetShape;
}

function conflistOf(objs: KubeObject[]): { text: string; json: Record<string, unknown> } {
  const cm = byKind(objs, 'ConfigMap')[0] as unknown as { data: Record<string, string> };
  const text = cm.data['10-trellis.conflist']!;
  return { text, json: JSON.parse(text) as Record<string, unknown> };
}

/** Where each container path is mounted from, e.g. /run/netns → hostPath /run/netns. */
function mounts(ds: DaemonSetShape): Record<string, { source: string; propagation?: string }> {
  const pod = ds.spec.template.spec;
  const out: Record<string, { source: string; propagation?: string }> = {};
  for (const m of pod.containers[0]!.volumeMounts) {
    const v = pod.volumes.find((x) => x.name === m.name)!;
    out[m.mountPath] = {
      source: v.hostPath ? `hostPath:${v.hostPath.path}` : `configMap:${v.configMap!.name}`,
      ...(m.mountPropagation ? { propagation: m.mountPropagation } : {}),
    };
  }
  return out;
}

describe('renderClusterNetwork', () => {
  it('GIVEN the same ClusterNetwork twice THEN the output is byte-identical with sorted keys', () => {
    const a = JSON.stringify(renderClusterNetwork(clusterNetwork(), { namespace: 'trellis-system' }));
    // Same content with every object's keys in reverse order must render the same bytes.
    const reversed = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reversed)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reversed(x)]),
            )
          : v;
    const shuffled = reversed(clusterNetwork()) as ClusterNetwork;
    expect(Object.keys(shuffled.spec!)[0]).toBe('attachments');
    const b = JSON.stringify(renderClusterNetwork(shuffled, { namespace: 'trellis-system' }));
    expect(b).toBe(a);
    const keysSorted = (v: unknown): boolean =>
      Array.isArray(v)
        ? v.every(keysSorted)
        : v !== null && typeof v === 'object'
          ? Object.keys(v).join() === Object.keys(v).sort().join() && Object.values(v).every(keysSorted)
          : true;
    expect(keysSorted(JSON.parse(a))).toBe(true);
  });

  it('renders SA, ClusterRole, ClusterRoleBinding, ConfigMap, DaemonSet and one NAD per attachment, all labelled', () => {
    const objs = renderClusterNetwork(clusterNetwork(), { namespace: 'trellis-system' });
    expect(objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`)).toEqual([
      'ServiceAccount/trellis-system/trellis-agent',
      'ClusterRole//trellis-agent',
      'ClusterRoleBinding//trellis-agent',
      'ValidatingAdmissionPolicy//trellis-agent',
      'ValidatingAdmissionPolicyBinding//trellis-agent',
      'ConfigMap/trellis-system/trellis-cni-config',
      'DaemonSet/trellis-system/trellis-agent',
      'NetworkAttachmentDefinition/default/sig-net',
      'NetworkAttachmentDefinition/media/media-net',
      'NetworkAttachmentDefinition/default/lan',
      'NetworkAttachmentDefinition/default/fast',
    ]);
    for (const o of objs) {
      expect(o.metadata.labels).toMatchObject({
        'app.kubernetes.io/managed-by': 'trellis',
        'network.trellis.dev/cluster-network': 'default',
      });
    }
  });

  it('suffixes names with the ClusterNetwork name when it is not "default"', () => {
    const objs = renderClusterNetwork(clusterNetwork('blue', { attachments: [] }), { namespace: 'ops' });
    expect(objs.map((o) => o.metadata.name)).toEqual([
      'trellis-agent-blue',
      'trellis-agent-blue',
      'trellis-agent-blue',
      'trellis-agent-blue',
      'trellis-agent-blue',
      'trellis-cni-config-blue',
      'trellis-agent-blue',
    ]);
    const crb = byKind(objs, 'ClusterRoleBinding')[0] as unknown as {
      subjects: unknown[];
      roleRef: { name: string };
    };
    expect(crb.subjects).toEqual([{ kind: 'ServiceAccount', name: 'trellis-agent-blue', namespace: 'ops' }]);
    expect(crb.roleRef.name).toBe('trellis-agent-blue');
    expect(conflistOf(objs).json.name).toBe('trellis-blue');
    expect(daemonSet(objs).spec.selector.matchLabels['network.trellis.dev/cluster-network']).toBe('blue');
  });

  it('renders the DaemonSet contract the agent and the lab rely on', () => {
    const objs = renderClusterNetwork(clusterNetwork(), {
      namespace: 'trellis-system',
      image: 'example/agent:1',
    });
    const ds = daemonSet(objs);
    const pod = ds.spec.template.spec;
    const c = pod.containers[0]!;
    expect(ds.metadata.namespace).toBe('trellis-system');
    expect(pod.hostNetwork).toBe(true);
    expect(pod.serviceAccountName).toBe('trellis-agent');
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(c.name).toBe('agent');
    expect(c.image).toBe('example/agent:1');
    expect(c.command).toEqual(['/usr/local/bin/trellis-agent']);
    expect(c.securityContext.privileged).toBe(true);
    expect(c.env).toEqual([
      { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'TRELLIS_CLUSTER_NETWORK', value: 'default' },
      { name: 'TRELLIS_LOG_LEVEL', value: 'info' },
      { name: 'TRELLIS_CNI_CONF_DIR', value: '/host/etc/cni/net.d' },
      { name: 'TRELLIS_CNI_BIN_DIR', value: '/host/opt/cni/bin' },
      { name: 'TRELLIS_NAD_CONF_DIR', value: '/host/etc/cni/multus/net.d' },
      { name: 'TRELLIS_SOCKET', value: '/run/trellis/cni.sock' },
      { name: 'TRELLIS_STATE_DIR', value: '/var/lib/trellis' },
      { name: 'TRELLIS_CNI_CONFIG', value: '/etc/trellis/cni/10-trellis.conflist' },
      { name: 'TRELLIS_CNI_BINARY', value: '/opt/trellis/bin/trellis-cni' },
      // a bounded young generation: memory flat under a burst of CNI requests
      { name: 'NODE_OPTIONS', value: '--max-semi-space-size=8' },
      { name: 'TRELLIS_METRICS_PORT', value: '9402' },
      { name: 'TRELLIS_METRICS_ADDRESS', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
    ]);
    // bounded, probed, and metrics on the node's address only
    expect(c.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(mounts(ds)).toEqual({
      '/host/etc/cni/net.d': { source: 'hostPath:/etc/cni/net.d' },
      '/host/opt/cni/bin': { source: 'hostPath:/opt/cni/bin' },
      '/host/etc/cni/multus/net.d': { source: 'hostPath:/etc/cni/multus/net.d' },
      '/run/trellis': { source: 'hostPath:/run/trellis' },
      '/var/lib/trellis': { source: 'hostPath:/var/lib/trellis' },
      '/run/netns': { source: 'hostPath:/run/netns', propagation: 'Bidirectional' },
      '/etc/trellis/cni': { source: 'configMap:trellis-cni-config' },
    });
  });

  it('uses the default image, and spec.agent.image over the option', () => {
    const plain = daemonSet(renderClusterNetwork(clusterNetwork(), { namespace: 'n' }));
    expect(plain.spec.template.spec.containers[0]!.image).toBe('trellis/agent:0.1.0');
    const fromSpec = daemonSet(
      renderClusterNetwork(clusterNetwork('default', { agent: { image: 'mine/agent:2' } }), {
        namespace: 'n',
        image: 'x/y:1',
      }),
    );
    expect(fromSpec.spec.template.spec.containers[0]!.image).toBe('mine/agent:2');
  });

  it('honours spec.agent host paths, socket path, log level and node selector', () => {
    const cn = clusterNetwork('default', {
      agent: {
        cniConfDir: '/var/lib/cni/conf',
        cniBinDir: '/usr/libexec/cni',
        socketPath: '/var/run/trellis-x/agent.sock',
        logLevel: 'debug',
        nodeSelector: { 'node-role.example/worker': 'true' },
      },
    });
    const objs = renderClusterNetwork(cn, { namespace: 'n' });
    const ds = daemonSet(objs);
    const env = Object.fromEntries(ds.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));
    expect(env.TRELLIS_SOCKET).toBe('/run/trellis/agent.sock');
    expect(env.TRELLIS_LOG_LEVEL).toBe('debug');
    expect(env.TRELLIS_CNI_CONF_DIR).toBe('/host/etc/cni/net.d');
    expect(mounts(ds)['/host/etc/cni/net.d']!.source).toBe('hostPath:/var/lib/cni/conf');
    expect(mounts(ds)['/host/opt/cni/bin']!.source).toBe('hostPath:/usr/libexec/cni');
    expect(mounts(ds)['/run/trellis']!.source).toBe('hostPath:/var/run/trellis-x');
    expect(ds.spec.template.spec.nodeSelector).toEqual({
      'kubernetes.io/os': 'linux',
      'node-role.example/worker': 'true',
    });
    const plugin = (conflistOf(objs).json.plugins as Record<string, unknown>[])[0]!;
    expect(plugin.socket).toBe('/var/run/trellis-x/agent.sock');
  });

  it('renders the conflist: our plugin with socket, MTU and ClusterNetwork, then portmap', () => {
    const { json } = conflistOf(renderClusterNetwork(clusterNetwork(), { namespace: 'n' }));
    expect(json).toEqual({
      cniVersion: '1.0.0',
      name: 'trellis',
      plugins: [
        { type: 'trellis', socket: '/run/trellis/cni.sock', mtu: 1450, clusterNetwork: 'default' },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    });
    const hostGw = conflistOf(
      renderClusterNetwork(clusterNetwork('default', { backend: { mode: 'host-gw' } }), { namespace: 'n' }),
    );
    expect((hostGw.json.plugins as { mtu: number }[])[0]!.mtu).toBe(1500);
    const set = conflistOf(
      renderClusterNetwork(clusterNetwork('default', { backend: { mode: 'vxlan', mtu: 8950 } }), {
        namespace: 'n',
      }),
    );
    expect((set.json.plugins as { mtu: number }[])[0]!.mtu).toBe(8950);
    // spec.agent.cniVersion 1.1.0: runtimes send STATUS and GC to the chain
    const v11 = conflistOf(
      renderClusterNetwork(clusterNetwork('default', { agent: { cniVersion: '1.1.0' } }), { namespace: 'n' }),
    );
    expect(v11.json.cniVersion).toBe('1.1.0');
  });

  it('rolls the agents when the conflist changes, and only then', () => {
    const hash = (cn: ClusterNetwork): string =>
      daemonSet(renderClusterNetwork(cn, { namespace: 'n' })).spec.template.metadata.annotations[
        CONFLIST_HASH_ANNOTATION
      ]!;
    const base = hash(clusterNetwork());
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(hash(clusterNetwork('default', { masquerade: false }))).toBe(base);
    expect(hash(clusterNetwork('default', { backend: { mode: 'vxlan', mtu: 1400 } }))).not.toBe(base);
  });

  it('renders each attachment as a NAD whose config is the delegate with trellis IPAM', () => {
    const nads = byKind(
      renderClusterNetwork(clusterNetwork(), { namespace: 'n' }),
      'NetworkAttachmentDefinition',
    );
    const configs = Object.fromEntries(
      nads.map((n) => [
        n.metadata.name,
        JSON.parse((n.spec as { config: string }).config) as Record<string, unknown>,
      ]),
    );
    const ipam = (pool: string) => ({ type: 'trellis', pool, socket: '/run/trellis/cni.sock' });
    const list = (name: string, first: Record<string, unknown>) => ({
      cniVersion: '1.0.0',
      name,
      plugins: [first, { type: 'tuning', capabilities: { mac: true } }],
    });
    const withPool = (name: string) => ({ ipam: ipam(`attachment:${name}`), capabilities: { ips: true } });
    expect(configs['sig-net']).toEqual(
      list('sig-net', { type: 'macvlan', master: 'eth1', mode: 'bridge', ...withPool('sig-net') }),
    );
    expect(configs['media-net']).toEqual(
      list('media-net', { type: 'vlan', master: 'eth2', vlanId: 100, mtu: 1400, ...withPool('media-net') }),
    );
    expect(configs.lan).toEqual(list('lan', { type: 'bridge', bridge: 'br-lan', ...withPool('lan') }));
    // No pool: the delegate gets no IPAM (an L2-only network).
    expect(configs.fast).toEqual(list('fast', { type: 'host-device', device: 'ens5f0' }));
  });

  it('keeps user strings as data: quotes and newlines cannot change the document', () => {
    const cn = clusterNetwork('default', { agent: { nodeSelector: { 'a"b': 'x\ny: z' } }, attachments: [] });
    const ds = daemonSet(renderClusterNetwork(cn, { namespace: 'n' }));
    expect(ds.spec.template.spec.nodeSelector['a"b']).toBe('x\ny: z');
  });

  it('matches the file snapshots of the conflist, the DaemonSet, the ClusterRole and a NAD', async () => {
    const objs = renderClusterNetwork(clusterNetwork(), { namespace: 'trellis-system' });
    // Exact bytes (canonical JSON), so key order is part of what the snapshot checks.
    const text = (o: unknown): string => `${JSON.stringify(o, null, 2)}\n`;
    await expect(conflistOf(objs).text).toMatchFileSnapshot('__snapshots__/10-trellis.conflist');
    await expect(text(daemonSet(objs))).toMatchFileSnapshot('__snapshots__/daemonset.json');
    await expect(text(byKind(objs, 'ClusterRole')[0])).toMatchFileSnapshot('__snapshots__/clusterrole.json');
    await expect(text(byKind(objs, 'NetworkAttachmentDefinition')[1])).toMatchFileSnapshot(
      '__snapshots__/nad-media-net.json',
    );
  });
});

describe('the Role for backend.bgp peer passwords', () => {
  const withPeers = (peers: BgpPeer[]) =>
    clusterNetwork('default', { backend: { mode: 'bgp', bgp: { asNumber: 64512, peers } } });

  it('lets the agent get exactly the named Secrets in its own namespace, and nothing else', () => {
    const objs = renderClusterNetwork(
      withPeers([
        { address: '198.19.1.1', asNumber: 65001, password: { secretKeyRef: { name: 'tor-b', key: 'pw' } } },
        {
          address: '198.19.2.1',
          asNumber: 65002,
          password: { secretKeyRef: { name: 'tor-a', key: 'pw', namespace: 'trellis-system' } },
        },
        { address: '198.19.3.1', asNumber: 65003, password: { secretKeyRef: { name: 'tor-a', key: 'x' } } },
        // elsewhere: a finding (realisable.ts), never a grant
        {
          address: '198.19.4.1',
          asNumber: 65004,
          password: { secretKeyRef: { name: 'other', key: 'pw', namespace: 'kube-system' } },
        },
        { address: '198.19.5.1', asNumber: 65005 },
      ]),
      { namespace: 'trellis-system' },
    );
    const [role] = byKind(objs, 'Role');
    expect(role?.metadata).toMatchObject({ name: 'trellis-agent', namespace: 'trellis-system' });
    expect((role as unknown as { rules: unknown }).rules).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['get'], resourceNames: ['tor-a', 'tor-b'] },
    ]);
    const [binding] = byKind(objs, 'RoleBinding');
    expect(binding).toMatchObject({
      metadata: { name: 'trellis-agent', namespace: 'trellis-system' },
      roleRef: { kind: 'Role', name: 'trellis-agent' },
      subjects: [{ kind: 'ServiceAccount', name: 'trellis-agent', namespace: 'trellis-system' }],
    });
    // the ClusterRole grants nothing about Secrets
    expect(JSON.stringify(byKind(objs, 'ClusterRole'))).not.toContain('secrets');
  });

  it('renders no Role while no peer has a password', () => {
    const objs = renderClusterNetwork(withPeers([{ address: '198.19.1.1', asNumber: 65001 }]), {
      namespace: 'trellis-system',
    });
    expect(byKind(objs, 'Role')).toEqual([]);
    expect(byKind(objs, 'RoleBinding')).toEqual([]);
  });
});
