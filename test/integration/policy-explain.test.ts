// `trellis policy explain` against any cluster, as `trellis status` does: the CLI run as a user
// would, with --kubeconfig/--context or $KUBECONFIG and no lab up, reads the real API server's
// Pods, Namespaces and NetworkPolicies and names the policy that decides.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NODE_BIN, REPO } from '../../lab/state.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { adminClient, kubeconfigPath, uniqueName } from '../support/kube.ts';

const ns = uniqueName('explain');
const noLab = mkdtempSync(join(tmpdir(), 'trellis-nolab-'));

function trellis(
  args: string[],
  env: Record<string, string> = {},
): { code: number; out: string; err: string } {
  const base = { ...process.env };
  delete base.KUBECONFIG;
  const r = spawnSync(NODE_BIN, [join(REPO, 'lab/cli.ts'), ...args], {
    encoding: 'utf8',
    // no lab on this "machine": the cluster comes from the flags or the environment only
    env: { ...base, TRELLIS_LAB_DIR: noLab, HOME: noLab, ...env },
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  const kube = await adminClient();
  try {
    await kube.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    for (const [name, ip] of [
      ['a', '10.98.0.1'],
      ['b', '10.98.0.2'],
    ] as const) {
      await kube.create(Builtin.Pod, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: ns, labels: { pod: name } },
        spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'x' }] },
      } as KubeObject);
      await kube.mergePatch(
        Builtin.Pod,
        name,
        { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } },
        ns,
        'status',
      );
    }
    await kube.create(Builtin.NetworkPolicy, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'only-a', namespace: ns },
      spec: {
        podSelector: { matchLabels: { pod: 'b' } },
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }] }],
      },
    } as KubeObject);
  } finally {
    await kube.close();
  }
});

describe('trellis policy explain against any cluster', () => {
  it('--kubeconfig and --context: the deciding policy and rule', () => {
    const r = trellis([
      'policy',
      'explain',
      '--kubeconfig',
      kubeconfigPath(),
      '--context',
      'trellis',
      '--from',
      `${ns}/a`,
      '--to',
      `${ns}/b`,
      '--port',
      '80/TCP',
      '--json',
    ]);
    expect(r.err).toBe('');
    const e = JSON.parse(r.out) as { allowed: boolean; ingress: { allowed: boolean; decidedBy?: unknown } };
    expect(e.allowed).toBe(true);
    expect(JSON.stringify(e.ingress)).toContain(`${ns}/only-a`);
  });

  it('$KUBECONFIG: an address the policy does not allow is denied', () => {
    const r = trellis(
      ['policy', 'explain', '--from', '192.0.2.7', '--to', `${ns}/b`, '--port', '80/TCP', '--json'],
      {
        KUBECONFIG: kubeconfigPath(),
      },
    );
    expect(r.code).toBe(0);
    const e = JSON.parse(r.out) as { allowed: boolean };
    expect(e.allowed).toBe(false);
  });

  it('an unknown context is an error naming it', () => {
    const kc = join(noLab, 'kc.json');
    writeFileSync(kc, readFileSync(kubeconfigPath()));
    const r = trellis([
      'policy',
      'explain',
      '--kubeconfig',
      kc,
      '--context',
      'nope',
      '--from',
      'a',
      '--to',
      'b',
      '--port',
      '80',
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('nope');
  });
});
