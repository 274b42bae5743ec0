// Unit tests for the operator's pure parts: status conditions, settings parsing, the selector.
import { describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import { ConfigError, parseConfig } from './config.ts';
import { computeStatus } from './status.ts';

const cn = (status?: ClusterNetwork['status']): ClusterNetwork => ({
  apiVersion: 'network.trellis.dev/v1alpha1',
  kind: 'ClusterNetwork',
  metadata: { name: 'default', generation: 4 },
  spec: { pools: [{ name: 'v4', cidr: '10.244.0.0/16' }], backend: { mode: 'vxlan' } },
  status,
});
const now = new Date('2026-01-01T00:00:00.000Z');
const conds = (s: ReturnType<typeof computeStatus>) =>
  Object.fromEntries((s.conditions ?? []).map((c) => [c.type, [c.status, c.reason]]));

describe('ClusterNetwork status', () => {
  it('is Ready with no nodes once everything is applied', () => {
    const s = computeStatus({ cn: cn(), findings: [], desired: 0, ready: 0, pools: [], now });
    expect(s.observedGeneration).toBe(4);
    expect(s.nodesReady).toBe('0/0');
    expect(s.poolCount).toBe(1);
    expect(conds(s)).toEqual({
      Ready: ['True', 'AgentsReady'],
      Progressing: ['False', 'Complete'],
      Degraded: ['False', 'AsExpected'],
    });
    expect(
      s.conditions?.every(
        (c) => c.lastTransitionTime === '2026-01-01T00:00:00Z' && c.observedGeneration === 4,
      ),
    ).toBe(true);
  });

  it('is Progressing while agents are not ready on every selected node', () => {
    const s = computeStatus({ cn: cn(), findings: [], desired: 3, ready: 1, pools: [], now });
    expect(s.nodes).toEqual({ desired: 3, ready: 1 });
    expect(conds(s)).toEqual({
      Ready: ['False', 'AgentsNotReady'],
      Progressing: ['True', 'RollingOut'],
      Degraded: ['False', 'AsExpected'],
    });
  });

  it('is Degraded naming each field that cannot be realised', () => {
    const s = computeStatus({
      cn: cn(),
      findings: [
        { field: 'spec.backend.mtu', message: 'too big' },
        { field: 'spec.pools[0].nodeSelector', message: 'matches nothing' },
      ],
      desired: 0,
      ready: 0,
      pools: [],
      now,
    });
    const degraded = s.conditions?.find((c) => c.type === 'Degraded');
    expect(degraded).toMatchObject({
      status: 'True',
      reason: 'Unrealisable',
      message: 'spec.backend.mtu: too big; spec.pools[0].nodeSelector: matches nothing',
    });
    expect(conds(s).Ready).toEqual(['False', 'Unrealisable']);
  });

  it('reports an apply failure as Degraded and still Progressing (a retry is coming)', () => {
    const s = computeStatus({
      cn: cn(),
      findings: [],
      applyError: 'forbidden',
      desired: 0,
      ready: 0,
      pools: [],
      now,
    });
    expect(conds(s)).toEqual({
      Ready: ['False', 'ApplyFailed'],
      Progressing: ['True', 'Retrying'],
      Degraded: ['True', 'ApplyFailed'],
    });
  });

  it('keeps lastTransitionTime while a condition keeps its status', () => {
    const first = computeStatus({ cn: cn(), findings: [], desired: 0, ready: 0, pools: [], now });
    const later = new Date('2026-01-02T00:00:00.000Z');
    const same = computeStatus({ cn: cn(first), findings: [], desired: 0, ready: 0, pools: [], now: later });
    expect(same.conditions?.map((c) => c.lastTransitionTime)).toEqual(
      first.conditions?.map((c) => c.lastTransitionTime),
    );
    const flipped = computeStatus({
      cn: cn(first),
      findings: [],
      desired: 1,
      ready: 0,
      pools: [],
      now: later,
    });
    expect(flipped.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime).toBe(
      '2026-01-02T00:00:00Z',
    );
  });
});

describe('operator settings', () => {
  it('defaults to the trellis-system namespace with leader election on', () => {
    const c = parseConfig([], {});
    expect(c).toMatchObject({
      namespace: 'trellis-system',
      leaderElection: true,
      metricsPort: 9401,
      leaseName: 'trellis-operator',
    });
  });

  it('takes flags over env', () => {
    const c = parseConfig(['--namespace', 'net', '--leader-elect=false', '--metrics-port=0'], {
      TRELLIS_NAMESPACE: 'other',
      KUBECONFIG: '/k',
    });
    expect(c).toMatchObject({ namespace: 'net', leaderElection: false, metricsPort: 0, kubeconfig: '/k' });
  });

  it('names the flag and variable to fix on bad input', () => {
    expect(() => parseConfig(['--lease-duration=abc'], {})).toThrow(
      /--lease-duration \(env TRELLIS_LEASE_DURATION\) must be a number/,
    );
    expect(() => parseConfig([], { TRELLIS_LEADER_ELECT: 'maybe' })).toThrow(
      /--leader-elect \(env TRELLIS_LEADER_ELECT\) must be true or false/,
    );
    expect(() => parseConfig(['--namespace=Bad_Name'], {})).toThrow(ConfigError);
    expect(() => parseConfig(['--bogus'], {})).toThrow(/unknown argument --bogus/);
    expect(() => parseConfig(['--lease-duration=5', '--renew-deadline=5'], {})).toThrow(
      /must be shorter than --lease-duration/,
    );
  });
});

describe('the ClusterNetwork selector flag', () => {
  it('is validated when the settings are read, naming the flag', () => {
    expect(parseConfig(['--selector=shard in (a,b),!legacy'], {}).clusterNetworkSelector).toBe(
      'shard in (a,b),!legacy',
    );
    expect(() => parseConfig(['--selector=shard in (a'], {})).toThrow(
      /--selector \(env TRELLIS_CLUSTERNETWORK_SELECTOR\): unbalanced parentheses/,
    );
  });
});
