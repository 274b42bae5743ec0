// Reports the policy enforcer's state: the `policy` part of this node's NodeNetworkStatus (its own
// field manager, so the network reporter's applies never remove it) and one Warning Event per
// NetworkPolicy (and problem text) that this node cannot enforce in full.
import { API_VERSION, NodeNetworkStatusResource } from '../src/api/group.ts';
import type { PolicySyncStatus } from '../src/api/nodestatus.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { Builtin } from '../src/kube/resource.ts';
import type { Logger } from '../src/log/logger.ts';
import type { PolicySyncState } from './policy.ts';

const FIELD_MANAGER = 'trellis-agent-policy';

export function renderPolicyStatus(s: PolicySyncState): PolicySyncStatus {
  const out: PolicySyncStatus = {
    synced: s.synced,
    policies: s.stats?.policies ?? 0,
    rules: s.stats?.rules ?? 0,
    setElements: s.stats?.elements ?? 0,
    lastSyncTime: s.lastSyncTime ?? new Date(0).toISOString(),
    lastSyncMilliseconds: s.lastSyncMs ?? 0,
    syncErrors: s.syncErrors,
  };
  if (s.message) out.message = s.message;
  if (s.unenforceable.length) out.unenforceable = s.unenforceable.map((u) => u.policy);
  return out;
}

export class PolicyStatusReporter {
  private readonly kube: KubeClient;
  private readonly node: string;
  private readonly log: Logger;
  private readonly warned = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private latest: PolicySyncState | undefined;
  private lastWritten = '';

  constructor(kube: KubeClient, node: string, log: Logger) {
    this.kube = kube;
    this.node = node;
    this.log = log;
  }

  /** Called after every sync; writes at most every `delayMs`. */
  update(s: PolicySyncState, delayMs = 1000): void {
    this.latest = s;
    void this.events(s);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, delayMs);
  }

  close(): void {
    clearTimeout(this.timer);
  }

  private async write(): Promise<void> {
    if (!this.latest) return;
    const policy = renderPolicyStatus(this.latest);
    const text = JSON.stringify({ ...policy, lastSyncTime: '', lastSyncMilliseconds: 0 });
    // the sync time alone changing is not worth a write per pod churn; heartbeat every minute
    if (text === this.lastWritten && Date.now() - Date.parse(policy.lastSyncTime) < 60_000) return;
    try {
      await this.kube.apply(
        NodeNetworkStatusResource,
        {
          apiVersion: API_VERSION,
          kind: 'NodeNetworkStatus',
          metadata: { name: this.node },
          status: { policy },
        },
        { fieldManager: FIELD_MANAGER },
        'status',
      );
      this.lastWritten = text;
    } catch (err: unknown) {
      // e.g. the network reporter has not created the object yet: try again shortly
      this.log.debug({ err: String(err) }, 'could not write policy status; retrying');
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        void this.write();
      }, 2000);
    }
  }

  private async events(s: PolicySyncState): Promise<void> {
    for (const u of s.unenforceable) {
      const message = `node ${this.node} cannot enforce all of this NetworkPolicy; the parts named allow nothing: ${u.problems.join('; ')}`;
      if (this.warned.get(u.policy) === message) continue;
      this.warned.set(u.policy, message);
      const [namespace, name] = u.policy.split('/') as [string, string];
      const now = new Date().toISOString();
      await this.kube
        .create(Builtin.Event, {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: `${name}.${Date.now().toString(16)}`, namespace },
          involvedObject: { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', name, namespace },
          reason: 'PolicyNotEnforceable',
          message: message.slice(0, 1000),
          type: 'Warning',
          source: { component: 'trellis-agent', host: this.node },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        })
        .catch((err: unknown) => this.log.warn({ err: String(err) }, 'could not record policy event'));
    }
  }
}
