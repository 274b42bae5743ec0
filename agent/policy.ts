// The policy enforcer: one list+watch each for Pods, Namespaces and NetworkPolicies feeds the pure
// compiler in src/policy, and its output is applied with `nft -f -`, one transaction per change.
// Invariants:
// - The first sync after a start replaces the whole table in one transaction; until then the
//   previous agent's table keeps enforcing, so a restart has no moment of open or closed traffic.
// - Later syncs apply only the diff (pod churn: set elements). A failed apply forgets what is
//   programmed, so the next sync replaces the table whole again.
// - A new pod that a policy isolates is in the verdict maps before its CNI ADD returns
//   (podAdded); a pod that no policy isolates does not wait.
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { applyNftScript } from '../src/dataplane/nft.ts';
import { canonicalIP } from '../src/ipam/cidr.ts';
import type { Informer } from '../src/kube/informer.ts';
import type { Logger } from '../src/log/logger.ts';
import {
  POLICY_TABLE,
  compile,
  endpointsFromPods,
  fromNetworkPolicy,
  isolating,
  renderDiff,
  renderFull,
  stats,
  type CompileStats,
  type Namespace,
  type NetworkPolicy,
  type PodObject,
  type Policy,
  type PolicyModel,
  type Ruleset,
} from '../src/policy/index.ts';
import type { PolicyCaches } from './caches.ts';
import { policyGauges, policySyncErrors, policySyncs } from './policy-metrics.ts';

/**
 * TRELLIS_POLICY=off runs the agent without NetworkPolicy (for harnesses that run an agent in the
 * host's own netns, where a table of ours would outlive the test). @default on
 */
export function policyEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TRELLIS_POLICY !== 'off';
}

export interface PolicyEnforcerOptions {
  /** The agent's shared watch caches (agent/caches.ts): this enforcer only subscribes to them. */
  caches: PolicyCaches;
  node: string;
  log: Logger;
  /** Applies one nft script as one transaction. @default `nft -f -` */
  apply?: (script: string) => Promise<void>;
  /** @default trellis-policy */
  table?: string;
  /** Whether the kernel has SCTP (rules for SCTP are programmed either way). @default probed */
  sctp?: boolean;
}

export interface PolicySyncState {
  synced: boolean;
  stats?: CompileStats;
  lastSyncTime?: string;
  lastSyncMs?: number;
  syncErrors: number;
  message?: string;
  unenforceable: { policy: string; problems: string[] }[];
}

const podRelevant = (p: PodObject): string =>
  JSON.stringify([p.metadata.labels, p.spec, p.status?.podIPs ?? p.status?.podIP, p.status?.phase]);

export class PolicyEnforcer {
  private readonly o: PolicyEnforcerOptions;
  private readonly apply: (script: string) => Promise<void>;
  private readonly table: string;
  private readonly sctp: boolean;
  readonly pods: Informer<PodObject>;
  readonly namespaces: Informer;
  readonly policies: Informer<NetworkPolicy>;
  /** Addresses of local pods whose ADD is in flight (the Pod status does not have them yet). */
  private readonly overrides = new Map<string, string[]>();
  private readonly converted = new Map<string, { rv: string | undefined; policy: Policy }>();
  private programmed: Ruleset | undefined;
  /** `programmed` was compiled from no policies at all (so it does not depend on the pods). */
  private programmedWithoutPolicies = false;
  private requested = 0;
  private done = 0;
  private running: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private readonly waiters: { gen: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly listeners = new Set<(s: PolicySyncState) => void>();
  private started = false;
  private readonly subscriptions: (() => void)[];
  readonly ready: Promise<void>;
  private markReady!: () => void;
  readonly state: PolicySyncState = { synced: false, syncErrors: 0, unenforceable: [] };

  constructor(o: PolicyEnforcerOptions) {
    this.o = o;
    this.apply = o.apply ?? applyNftScript;
    this.table = o.table ?? POLICY_TABLE;
    this.sctp = o.sctp ?? existsSync('/proc/sys/net/sctp');
    this.pods = o.caches.pods;
    this.namespaces = o.caches.namespaces;
    this.policies = o.caches.networkPolicies;
    this.ready = new Promise((r) => (this.markReady = r));
    const kick = (): void => {
      this.request();
    };
    this.subscriptions = [
      this.pods.on('add', kick),
      this.pods.on('delete', (p) => {
        this.overrides.delete(`${p.metadata.namespace}/${p.metadata.name}`);
        kick();
      }),
      this.pods.on('update', (p, old) => {
        if (podRelevant(p) !== podRelevant(old)) kick();
      }),
      this.namespaces.on('add', kick),
      this.namespaces.on('delete', kick),
      this.namespaces.on('update', (n, old) => {
        if (JSON.stringify(n.metadata.labels) !== JSON.stringify(old.metadata.labels)) kick();
      }),
      ...(['add', 'update', 'delete'] as const).map((ev) => this.policies.on(ev, kick)),
    ];
  }

  /** Starts the watches (idempotent: they are shared); the first full sync runs once all three have listed. */
  start(): void {
    this.pods.start();
    this.namespaces.start();
    this.policies.start();
    void Promise.all([this.pods.synced, this.namespaces.synced, this.policies.synced]).then(
      () => {
        this.started = true;
        this.request();
      },
      () => undefined,
    );
  }

  /** Unsubscribes; the shared watches are stopped by their owner (the agent's InformerSet). */
  stop(): Promise<void> {
    clearTimeout(this.retry);
    for (const unsubscribe of this.subscriptions.splice(0)) unsubscribe();
    for (const w of this.waiters.splice(0)) w.reject(new Error('policy enforcer stopped'));
    return Promise.resolve();
  }

  onSync(fn: (s: PolicySyncState) => void): void {
    this.listeners.add(fn);
  }

  /**
   * Called by CNI ADD with the new pod's addresses, before the result is returned: when a policy
   * isolates the pod, resolves only once the pod's verdicts are programmed.
   */
  async podAdded(namespace: string, name: string, addresses: string[], timeoutMs = 10_000): Promise<void> {
    const key = `${namespace}/${name}`;
    this.overrides.set(
      key,
      addresses.map((a) => canonicalIP(a)),
    );
    const gen = this.request();
    if (!this.needsWait(namespace, name)) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `NetworkPolicy for ${key} was not programmed within ${timeoutMs} ms (${this.state.message ?? 'policy watches not synced yet'})`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.waitFor(gen), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether a pod may be isolated: yes until the caches are synced (fail closed). */
  private needsWait(namespace: string, name: string): boolean {
    if (!this.started) return true;
    const pod = this.pods.get(`${namespace}/${name}`);
    const labels = pod?.metadata.labels;
    if (!pod) return true;
    const ep = { key: '', namespace, name, labels: labels ?? {}, addresses: [], ports: [], node: '' };
    const pols = this.currentPolicies();
    return isolating(pols, ep, 'ingress').length > 0 || isolating(pols, ep, 'egress').length > 0;
  }

  private waitFor(gen: number): Promise<void> {
    if (this.done >= gen) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ gen, resolve, reject }));
  }

  private request(): number {
    const gen = ++this.requested;
    if (this.started && !this.running) this.running = this.loop();
    return gen;
  }

  private async loop(): Promise<void> {
    try {
      while (this.done < this.requested) {
        const gen = this.requested;
        await this.syncOnce();
        this.done = gen;
        for (let i = this.waiters.length - 1; i >= 0; i--)
          if (this.waiters[i]!.gen <= gen) this.waiters.splice(i, 1)[0]!.resolve();
      }
    } catch (err: unknown) {
      const message = err instanceof Error ? err.message : String(err);
      this.o.log.error({ err: message }, 'policy sync failed; retrying');
      this.retry = setTimeout(() => this.request(), 1000);
    } finally {
      this.running = undefined;
    }
  }

  private currentPolicies(): Policy[] {
    const out: Policy[] = [];
    const seen = new Set<string>();
    for (const np of this.policies.list()) {
      const key = `${np.metadata.namespace}/${np.metadata.name}`;
      seen.add(key);
      let c = this.converted.get(key);
      if (!c || c.rv !== np.metadata.resourceVersion) {
        const policy = fromNetworkPolicy(np);
        if (!this.sctp && JSON.stringify(np.spec ?? {}).includes('"SCTP"'))
          policy.problems.push(
            'protocol SCTP: this node has no SCTP support in its kernel; SCTP rules match no traffic',
          );
        c = { rv: np.metadata.resourceVersion, policy };
        this.converted.set(key, c);
      }
      out.push(c.policy);
    }
    for (const k of this.converted.keys()) if (!seen.has(k)) this.converted.delete(k);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The model from the caches (and in-flight ADDs). */
  model(): PolicyModel {
    const pods = this.pods.list();
    for (const p of pods) {
      const key = `${p.metadata.namespace}/${p.metadata.name}`;
      if (this.overrides.has(key) && (p.status?.podIPs?.length || p.status?.podIP))
        this.overrides.delete(key);
    }
    const namespaces = new Map<string, Namespace>();
    for (const ns of this.namespaces.list())
      namespaces.set(ns.metadata.name, { name: ns.metadata.name, labels: ns.metadata.labels ?? {} });
    return {
      endpoints: endpointsFromPods(pods, this.overrides),
      namespaces,
      policies: this.currentPolicies(),
      nodes: [],
    };
  }

  private async syncOnce(): Promise<void> {
    const t0 = performance.now();
    // With no NetworkPolicy nothing is isolated and the ruleset is the same whatever the pods are,
    // so a pod event has nothing to program. Rebuilding the model from every pod of the cluster on
    // each pod event was most of an agent's CPU while 1,000 pods started (make bench-scale).
    if (this.programmed && this.programmedWithoutPolicies && this.policies.list().length === 0) return;
    const model = this.model();
    const next = compile(model, this.o.node, this.table);
    let script: string;
    let kind: 'full' | 'diff' = 'diff';
    try {
      script = this.programmed ? renderDiff(this.programmed, next) : '';
    } catch {
      this.programmed = undefined;
      script = '';
    }
    if (!this.programmed) {
      kind = 'full';
      script = renderFull(next);
    }
    try {
      if (script) await this.apply(script);
    } catch (err: unknown) {
      this.programmed = undefined;
      this.state.synced = false;
      this.state.syncErrors++;
      this.state.message = err instanceof Error ? err.message.slice(0, 500) : String(err);
      policySyncErrors.inc();
      this.emit();
      throw err;
    }
    this.programmed = next;
    this.programmedWithoutPolicies = model.policies.length === 0;
    const ms = performance.now() - t0;
    const s = stats(next, model.policies.length);
    policyGauges.policies.set(s.policies);
    policyGauges.rules.set(s.rules);
    policyGauges.elements.set(s.elements);
    policyGauges.lastSync.set(ms / 1000);
    policySyncs.observe({ kind }, ms / 1000);
    Object.assign(this.state, {
      synced: true,
      stats: s,
      lastSyncTime: new Date().toISOString(),
      lastSyncMs: Math.round(ms),
      message: undefined,
      unenforceable: model.policies
        .filter((p) => p.problems.length > 0)
        .map((p) => ({ policy: p.key, problems: p.problems })),
    });
    if (kind === 'full' || ms > 100) this.o.log.info({ kind, ms: Math.round(ms), ...s }, 'policy programmed');
    else
      this.o.log.debug(
        { kind, ms: Math.round(ms), lines: script.split('\n').length - 1 },
        'policy programmed',
      );
    if (kind === 'full') this.markReady();
    this.emit();
  }

  private emit(): void {
    for (const fn of this.listeners) fn(this.state);
  }
}
