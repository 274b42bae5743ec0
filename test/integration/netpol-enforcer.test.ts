// The agent's NetworkPolicy enforcer against the real kube-apiserver, with nft replaced by a
// recorder of the scripts it would run (the kernel side is covered by test/e2e/netpol.test.ts):
// the first sync replaces the whole table, later changes are diffs (pod churn: elements only),
// CNI ADD of an isolated pod waits until its verdicts are programmed, and a policy the node cannot
// enforce (SCTP on a kernel without it) gets a Warning Event saying why.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { register } from 'prom-client';
import type { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { InformerSet } from '../../src/kube/informers.ts';
import { policyCaches } from '../../agent/caches.ts';
import { PolicyEnforcer } from '../../agent/policy.ts';
import { PolicyStatusReporter } from '../../agent/policy-status.ts';
import { adminClient, eventually, uniqueName } from '../support/kube.ts';

const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let kube: KubeClient;
let enforcer: PolicyEnforcer;
let informers: InformerSet;
let reporter: PolicyStatusReporter;
const scripts: string[] = [];
const node = uniqueName('pe-node');
const ns = uniqueName('pe');

async function pod(name: string, ip: string | undefined, onNode = node, namespace = ns): Promise<void> {
  await kube.create(Builtin.Pod, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      nodeName: onNode,
      containers: [{ name: 'c', image: 'x', ports: [{ name: 'http', containerPort: 8080 }] }],
    },
  } as KubeObject);
  if (ip)
    await kube.mergePatch(
      Builtin.Pod,
      name,
      { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } },
      namespace,
      'status',
    );
}

async function policy(name: string, spec: unknown): Promise<void> {
  await kube.create(Builtin.NetworkPolicy, {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: ns },
    spec,
  } as KubeObject);
}

const since = (n: number): string => scripts.slice(n).join('');
let failNext = false;

/** A metric's value as the agent's /metrics endpoint serves it (the same default registry). */
async function metric(name: string): Promise<number> {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(await register.metrics());
  return m ? Number(m[1]) : NaN;
}

beforeAll(async () => {
  kube = await adminClient();
  await kube.create(Builtin.Namespace, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ns, labels: { team: 'a' } },
  });
  await pod('a', '10.99.0.1');
  informers = new InformerSet(kube, quiet);
  enforcer = new PolicyEnforcer({
    caches: policyCaches(informers),
    node,
    log: quiet,
    // a node without SCTP in its kernel: policies using it cannot be enforced in full
    sctp: false,
    apply: (s) => {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error('nft: Could not process rule (test)'));
      }
      scripts.push(s);
      return Promise.resolve();
    },
  });
  reporter = new PolicyStatusReporter(kube, node, quiet);
  enforcer.onSync((s) => reporter.update(s, 60_000));
  enforcer.start();
  await enforcer.ready;
});

afterAll(async () => {
  reporter?.close();
  await enforcer?.stop();
  await informers?.stop();
  await kube?.close();
});

describe('PolicyEnforcer', () => {
  it('starts with one whole-table replacement', () => {
    expect(scripts[0]).toMatch(
      /^table inet trellis-policy \{\}\ndelete table inet trellis-policy\ntable inet trellis-policy \{/,
    );
  });

  it('a new policy is programmed as a diff that isolates the local pod', async () => {
    const n = scripts.length;
    await policy('deny', { podSelector: {} });
    await eventually(
      async () =>
        /add element inet trellis-policy ingress4 \{ 10\.99\.0\.1 : jump in-all-/.test(since(n))
          ? true
          : undefined,
      'the pod isolated',
      10_000,
    );
    expect(since(n)).not.toContain('delete table');
    expect(enforcer.state).toMatchObject({ synced: true, syncErrors: 0 });
  });

  it('CNI ADD of a pod the policy isolates returns only after its verdicts are programmed', async () => {
    await pod('b', undefined);
    await eventually(
      async () => (enforcer.pods.get(`${ns}/b`) ? true : undefined),
      'pod b in the cache',
      10_000,
    );
    const n = scripts.length;
    await enforcer.podAdded(ns, 'b', ['10.99.0.2']);
    expect(since(n)).toMatch(/add element inet trellis-policy ingress4 \{ 10\.99\.0\.2 : jump in-all-/);
  });

  it('pod churn elsewhere edits set elements only', async () => {
    await policy('from-team', {
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'a' } } }], ports: [{ port: 'http' }] }],
    });
    await eventually(
      // by its rule's comment: other files create policies on the same API server meanwhile
      async () =>
        since(0).includes(`"${ns}/from-team ingress[0]"`) && /p-\w+-4/.test(since(0)) ? true : undefined,
      'second policy',
      10_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    const n = scripts.length;
    await pod('remote', '10.99.1.1', 'another-node');
    await eventually(
      async () => (/10\.99\.1\.1/.test(since(n)) ? true : undefined),
      'remote pod in the peer sets',
      10_000,
    );
    const lines = since(n).trim().split('\n');
    expect(lines.every((l) => l.startsWith('add element') || l.startsWith('delete element'))).toBe(true);
    expect(since(n)).toContain('10.99.1.1 . tcp . 8080');
  });

  it('a policy with a part it cannot enforce gets a Warning Event saying why', async () => {
    await policy('bad', { podSelector: {}, ingress: [{ ports: [{ protocol: 'SCTP', port: 9000 }] }] });
    const ev = await eventually(
      async () =>
        (
          await kube.listAll<
            KubeObject & { reason?: string; message?: string; involvedObject?: { name?: string } }
          >(Builtin.Event, ns)
        ).items.find((e) => e.reason === 'PolicyNotEnforceable' && e.involvedObject?.name === 'bad'),
      'the PolicyNotEnforceable event',
      10_000,
    );
    expect(ev.message).toContain('protocol SCTP: this node has no SCTP support');
    expect(enforcer.state.unenforceable.map((u) => u.policy)).toEqual([`${ns}/bad`]);
  });

  it('metrics: policies, rules, set elements, last sync duration; a failed apply is a sync error', async () => {
    expect(await metric('trellis_agent_policy_policies')).toBe(enforcer.state.stats?.policies);
    expect(await metric('trellis_agent_policy_rules')).toBe(enforcer.state.stats?.rules);
    expect(await metric('trellis_agent_policy_set_elements')).toBe(enforcer.state.stats?.elements);
    expect(await metric('trellis_agent_policy_last_sync_seconds')).toBeGreaterThan(0);
    const errors = await metric('trellis_agent_policy_sync_errors_total');
    failNext = true;
    const n = scripts.length;
    await policy('after-failure', { podSelector: { matchLabels: { app: 'a' } } });
    // the failed diff is counted, and the retry replaces the whole table (what is programmed is unknown)
    await eventually(
      async () => (/delete table inet trellis-policy/.test(since(n)) ? true : undefined),
      'a whole-table retry',
      10_000,
    );
    expect(await metric('trellis_agent_policy_sync_errors_total')).toBe(errors + 1);
    expect(enforcer.state).toMatchObject({ synced: true, syncErrors: 1 });
  });
});
