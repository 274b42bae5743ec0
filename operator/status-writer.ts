// The one writer of ClusterNetwork `.status`, in the spirit of controller-runtime's `Owns`: cache
// events (agents' NodeNetworkStatuses, Nodes, IPBlocks, the rendered DaemonSet, the ClusterNetwork
// itself) mark a ClusterNetwork dirty; at most one flush per interval computes each dirty one's
// status from the caches and writes it only when it changed. So a burst of agent heartbeats costs
// no request at all when nothing changed, and at most one status write per interval when it did.
// When the nodes change whether a ClusterNetwork can be realised, the same stream re-runs its
// reconcile (which applies what is now possible); drift of rendered objects is repaired from the
// same caches (drift.ts).
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import { ClusterNetworkResource } from '../src/api/group.ts';
import type { NodeNetworkStatus } from '../src/api/nodestatus.ts';
import { canonicalJson } from '../src/framework/essence.ts';
import { Builtin } from '../src/kube/resource.ts';
import { CLUSTER_NETWORK_LABEL } from '../src/render/index.ts';
import type { Finding } from '../src/render/realisable.ts';
import type { OperatorContext } from './context.ts';

/** What a reconcile found that the caches cannot show. */
export interface ReconcileOutcome {
  /** The apply error, if applying failed (a retry is coming). */
  applyError?: string;
  /** Set when rendering failed (a bug or an unexpected spec): reported as a finding on spec. */
  renderError?: string;
  /** Findings the reconcile acted on (unrealisable, or the render failed). */
  findings: Finding[];
}

export interface StatusWriterDeps {
  /** Computes the status of a ClusterNetwork from the caches and the last reconcile's outcome. */
  statusOf: (
    cn: ClusterNetwork,
    outcome: ReconcileOutcome,
  ) => {
    status: ClusterNetwork['status'];
    findings: Finding[];
  };
  /** Runs the reconcile again (realisability changed with the nodes). */
  reconcile: (cn: ClusterNetwork) => Promise<void>;
}

export class StatusWriter {
  private readonly ctx: OperatorContext;
  private readonly deps: StatusWriterDeps;
  private readonly intervalMs: number;
  private readonly outcomes = new Map<string, ReconcileOutcome>();
  private readonly dirty = new Set<string>();
  /** The status last written per ClusterNetwork, until the cache shows it (no double write). */
  private readonly written = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private lastFlush = 0;
  private stopped = false;
  /** Counts for the benchmark and metrics: status writes sent, flushes run. */
  readonly counts = { writes: 0, flushes: 0 };

  constructor(ctx: OperatorContext, deps: StatusWriterDeps, intervalMs = 1000) {
    this.ctx = ctx;
    this.deps = deps;
    this.intervalMs = intervalMs;
  }

  /** A reconcile finished: remember what it found, and write the status it implies. */
  recorded(cnName: string, outcome: ReconcileOutcome): void {
    this.outcomes.set(cnName, outcome);
    this.request(cnName);
  }

  forget(cnName: string): void {
    this.outcomes.delete(cnName);
    this.written.delete(cnName);
    this.dirty.delete(cnName);
  }

  request(cnName: string): void {
    if (this.stopped || !this.outcomes.has(cnName)) return;
    this.dirty.add(cnName);
    this.schedule();
  }

  requestAll(): void {
    for (const name of this.outcomes.keys()) this.request(name);
  }

  /** Subscribes to the caches; returns the function that stops the writer. */
  start(): () => void {
    const { caches } = this.ctx;
    const forStatus = (s: NodeNetworkStatus): void => {
      if (s.status?.clusterNetwork) this.request(s.status.clusterNetwork);
    };
    const subs = [
      caches.statuses.on('add', forStatus),
      caches.statuses.on('delete', forStatus),
      caches.statuses.on('update', (s, old) => {
        // A heartbeat changes nothing the cache keeps (it is trimmed to what status counts).
        if (canonicalJson(s.status ?? {}) === canonicalJson(old.status ?? {})) return;
        forStatus(s);
        if (old.status?.clusterNetwork !== s.status?.clusterNetwork) forStatus(old);
      }),
      // Nodes decide which agents are desired and whether a pool selects anything.
      caches.nodes.on('add', () => this.requestAll()),
      caches.nodes.on('delete', () => this.requestAll()),
      caches.nodes.on('update', (n, old) => {
        if (canonicalJson(n.metadata.labels ?? {}) !== canonicalJson(old.metadata.labels ?? {}))
          this.requestAll();
      }),
      caches.blocks.on('add', () => this.requestAll()),
      caches.blocks.on('delete', () => this.requestAll()),
      caches.blocks.on('update', (b, old) => {
        if (b.spec?.used !== old.spec?.used || b.spec?.pool !== old.spec?.pool) this.requestAll();
      }),
      caches.clusterNetworks.on('update', (cn) => this.request(cn.metadata.name)),
      caches.clusterNetworks.on('delete', (cn) => this.forget(cn.metadata.name)),
      caches.owned.get(Builtin.DaemonSet)!.on('update', (ds) => {
        const cn = ds.metadata.labels?.[CLUSTER_NETWORK_LABEL];
        if (cn) this.request(cn);
      }),
    ];
    return () => {
      this.stopped = true;
      if (this.timer) clearTimeout(this.timer);
      for (const u of subs) u();
    };
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    const wait = Math.max(0, this.lastFlush + this.intervalMs - Date.now());
    this.timer = setTimeout(() => void this.flush(), wait);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    const names = [...this.dirty];
    this.dirty.clear();
    this.counts.flushes += 1;
    for (const name of names) {
      try {
        await this.writeOne(name);
      } catch (err: unknown) {
        this.ctx.logger.warn({ err, clusterNetwork: name }, 'status write failed; will retry');
        this.dirty.add(name);
      }
    }
    this.lastFlush = Date.now();
    this.timer = undefined;
    if (this.dirty.size) this.schedule();
  }

  private async writeOne(name: string): Promise<void> {
    const cn = this.ctx.caches.clusterNetworks.get(name);
    const outcome = this.outcomes.get(name);
    if (!cn || cn.metadata.deletionTimestamp || !outcome) return;
    const { status, findings } = this.deps.statusOf(cn, outcome);
    if (canonicalJson(findings) !== canonicalJson(outcome.findings)) {
      // The nodes changed what can be realised: reconcile (apply or hold back), which records anew.
      await this.deps.reconcile(cn);
      return;
    }
    const want = canonicalJson(status ?? {});
    if (canonicalJson(cn.status ?? {}) === want || this.written.get(name) === want) return;
    await this.ctx.kube.mergePatch(ClusterNetworkResource, name, { status }, undefined, 'status');
    this.written.set(name, want);
    this.counts.writes += 1;
  }
}
