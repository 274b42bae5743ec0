import { describe, expect, it } from 'vitest';
import {
  apiServiceRules,
  containerdConfig,
  containerdConfigV3,
  kubeletConfig,
  mountScript,
  PRIVATE_DIRS,
  realNodeFiles,
} from './config.ts';

describe('real lab node', () => {
  const files = realNodeFiles('/lab', 'trl', 'node1');

  it('gives every node its own cgroup root and folders', () => {
    expect(files.cgroupRoot).toBe('/trl-node1');
    expect(realNodeFiles('/lab', 'trl', 'node2').root).toBe('/lab/nodes/node2/root');
  });

  it('binds each private folder and each kubelet sysctl inside the node, then makes / rshared', () => {
    const script = mountScript(files).split('\n');
    for (const d of PRIVATE_DIRS)
      expect(script).toContain(`mount --bind '/lab/nodes/node1/root/${d}' '/${d}'`);
    expect(script).toContain(
      "mount --bind '/lab/nodes/node1/sysctl/vm.overcommit_memory' /proc/sys/vm/overcommit_memory",
    );
    expect(script.indexOf('mount -t tmpfs -o mode=755 tmpfs /run')).toBeLessThan(
      script.indexOf('mount --make-rshared /'),
    );
    expect(script.filter(Boolean).at(-1)).toBe('mount --make-rshared /');
  });

  it('restricts oom_score_adj and uses the local pause image', () => {
    const toml = containerdConfig('docker.io/trellis/pause:0.1.0');
    expect(toml).toContain('restrict_oom_score_adj = true');
    expect(toml).toContain('sandbox_image = "docker.io/trellis/pause:0.1.0"');
    expect(toml).toContain('"io.containerd.internal.v1.opt"');
  });

  it('points kubelet at its node address, cgroup root and the cluster CA', () => {
    expect(
      kubeletConfig({ caFile: '/ca.crt', nodeIp: '198.18.0.11', cgroupRoot: '/trl-node1' }),
    ).toMatchObject({
      address: '198.18.0.11',
      cgroupRoot: '/trl-node1',
      cgroupDriver: 'cgroupfs',
      authentication: { x509: { clientCAFile: '/ca.crt' }, anonymous: { enabled: false } },
    });
  });

  it('sends the kubernetes Service address to the API server, for hostNetwork pods and pods', () => {
    const rules = apiServiceRules({ serviceIp: '10.0.0.1', apiIp: '198.18.0.1', apiPort: 6443 });
    expect(rules.match(/ip daddr 10\.0\.0\.1 tcp dport 443 dnat to 198\.18\.0\.1:6443/g)).toHaveLength(2);
    expect(rules).toContain('hook output');
    expect(rules).toContain('hook prerouting');
  });

  it('gives containerd 2 the same choices in its version 3 config, with the shim built beside it', () => {
    const c = containerdConfigV3('docker.io/trellis/pause:0.1.0', '/cache/containerd-shim-runc-v2-v2.4.2');
    expect(c).toMatch(/^version = 3$/m);
    expect(c).toContain('sandbox = "docker.io/trellis/pause:0.1.0"');
    expect(c).toContain('restrict_oom_score_adj = true');
    expect(c).toContain('runtime_path = "/cache/containerd-shim-runc-v2-v2.4.2"');
    expect(c).toContain('bin_dirs = ["/opt/cni/bin"]');
    expect(c).toContain('"io.containerd.internal.v1.opt"');
  });
});
