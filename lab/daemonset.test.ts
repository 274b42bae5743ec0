// GIVEN the agent DaemonSet our renderer produces, WHEN the lab maps it onto a simulated node,
// THEN the command, env and volumes land in the node's folder exactly as a kubelet would lay them out.
import { describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import { renderClusterNetwork } from '../src/render/index.ts';
import {
  agentContainer,
  configMapsOf,
  launchSpec,
  rewritePath,
  type DaemonSetLike,
  type NodeContext,
  type PodSpec,
} from './daemonset.ts';

const cn: ClusterNetwork = {
  apiVersion: 'network.trellis.dev/v1alpha1',
  kind: 'ClusterNetwork',
  metadata: { name: 'default' },
  spec: {
    pools: [{ name: 'default', cidr: '10.244.0.0/16', blockSize: 26 }],
    backend: { mode: 'vxlan' },
    masquerade: true,
  },
};

function rendered(): { ds: DaemonSetLike; cm: Record<string, string> } {
  const objs = renderClusterNetwork(cn, { namespace: 'trellis-system' });
  const ds = objs.find((o) => o.kind === 'DaemonSet') as unknown as DaemonSetLike;
  const cm = objs.find((o) => o.kind === 'ConfigMap') as unknown as {
    metadata: { name: string };
    data: Record<string, string>;
  };
  return { ds, cm: { [cm.metadata.name]: JSON.stringify(cm.data) } };
}

const ctx = (configMaps: Record<string, Record<string, string>>): NodeContext => ({
  nodeName: 'node1',
  nodeIP: '198.18.0.11',
  nodeRoot: '/lab/nodes/node1/root',
  volumesDir: '/lab/nodes/node1/volumes',
  repo: '/repo',
  nodeBin: '/repo/node_modules/.bin/node',
  kubeconfig: '/lab/agent.kubeconfig',
  configMaps,
});

describe('launchSpec for the rendered agent DaemonSet', () => {
  const objs = renderClusterNetwork(cn, { namespace: 'trellis-system' });
  const ds = objs.find((o) => o.kind === 'DaemonSet') as unknown as DaemonSetLike;
  const cmObj = objs.find((o) => o.kind === 'ConfigMap') as unknown as {
    metadata: { name: string };
    data: Record<string, string>;
  };
  const spec = ds.spec?.template?.spec as PodSpec;
  const l = launchSpec(ds, agentContainer(spec), ctx({ [cmObj.metadata.name]: cmObj.data }));

  it('runs the agent program with the pinned node', () => {
    expect(l.cmd.slice(0, 2)).toEqual(['/repo/node_modules/.bin/node', '/repo/agent/main.ts']);
  });

  it('resolves the node name from the downward API and uses the lab kubeconfig', () => {
    const nodeVar = agentContainer(spec).env?.find(
      (e) => e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName',
    );
    expect(nodeVar).toBeDefined();
    expect(l.env[nodeVar!.name]).toBe('node1');
    expect(l.env.KUBECONFIG).toBe('/lab/agent.kubeconfig');
  });

  it('rewrites every container path in env to the host folder it mounts', () => {
    for (const v of Object.values(l.env)) {
      if (!v.startsWith('/')) continue;
      const ok = v.startsWith('/lab/') || v.startsWith('/repo/') || v.startsWith('/run/netns');
      expect(ok, `env value ${v} still points inside the container`).toBe(true);
    }
    expect(Object.values(l.env)).toContain('/lab/nodes/node1/root/run/trellis/cni.sock');
    expect(Object.values(l.env)).toContain('/lab/nodes/node1/root/etc/cni/net.d');
    expect(Object.values(l.env)).toContain('/repo/dist/trellis-cni');
  });

  it('materialises the conflist configMap as files', () => {
    const files = Object.keys(l.files);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(f.startsWith('/lab/nodes/node1/volumes/')).toBe(true);
    expect(Object.values(l.files).some((c) => c.includes('"plugins"'))).toBe(true);
    expect(configMapsOf(spec)).toContain(cmObj.metadata.name);
  });

  it('creates host folders under the node root, never on the real host', () => {
    // The DaemonSet mounts host folders (CNI conf and bin, the socket's folder): each must exist.
    expect(l.dirs).toEqual(expect.arrayContaining(['/lab/nodes/node1/root/etc/cni/net.d']));
    for (const d of l.dirs) expect(d.startsWith('/lab/nodes/node1/')).toBe(true);
  });
});

describe('rewritePath', () => {
  const table: [string, string][] = [
    ['/run/trellis', '/n/run/trellis'],
    ['/run', '/n/run'],
  ];
  it('maps the longest mount and keeps the rest of the path', () => {
    expect(rewritePath('/run/trellis/cni.sock', table)).toBe('/n/run/trellis/cni.sock');
    expect(rewritePath('/run/other', table)).toBe('/n/run/other');
  });
  it('rewrites --flag=path and leaves other values alone', () => {
    expect(rewritePath('--socket=/run/trellis/x', table)).toBe('--socket=/n/run/trellis/x');
    expect(rewritePath('/running', table)).toBe('/running');
    expect(rewritePath('info', table)).toBe('info');
  });
  it('refuses a command the lab cannot map', () => {
    const { ds } = rendered();
    const spec = structuredClone(ds.spec!.template!.spec!);
    spec.containers[0].command = ['/bin/something-else'];
    expect(() => launchSpec({ ...ds, spec: { template: { spec } } }, spec.containers[0], ctx({}))).toThrow(
      /cannot map/,
    );
  });
});
