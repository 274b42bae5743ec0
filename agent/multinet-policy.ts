// MultiNetworkPolicy enforcement: for every extra-network attachment on this node (from the
// delegation cache), the policies for that network are compiled by the NetworkPolicy compiler
// (through src/multinet/policy.ts) into one nftables table per interface, installed inside the
// pod's network namespace with `nft -f -` (argv + stdin, no shell). Level-based: any change to
// policies, pods (labels, network-status) or namespaces recompiles everything for this node; a
// script equal to the last one applied is skipped. The applied scripts are only an optimisation:
// after a restart every table is replaced again (renderFull is an atomic replacement).
import type { CachedAttachment } from '../src/cni/cache.ts';
import { parseCniArgs } from '../src/cni/types.ts';
import { runResult } from '../src/dataplane/exec.ts';
import type { Informer } from '../src/kube/informer.ts';
import type { KubeObject } from '../src/kube/object.ts';
import type { Logger } from '../src/log/logger.ts';
import {
  NETWORK_STATUS_ANNOTATION,
  compileMultiPolicy,
  multiPolicyScript,
  multiPolicyTable,
  parseNetworkStatus,
  type MultiNetworkPolicy,
} from '../src/multinet/index.ts';
import type { PodObject } from '../src/policy/index.ts';
import type { PolicyCaches } from './caches.ts';
import { debounced } from './watch.ts';

export interface MultiPolicyDeps {
  /** The agent's shared watch caches (agent/caches.ts): pods and namespaces are the NetworkPolicy enforcer's too. */
  caches: Pick<PolicyCaches, 'pods' | 'namespaces'> & { multiNetworkPolicies: Informer<MultiNetworkPolicy> };
  log: Logger;
  /** The node's extra-network attachments (the delegation cache). */
  attachments: () => Promise<CachedAttachment[]>;
}

export class MultiPolicyEnforcer {
  private readonly d: MultiPolicyDeps;
  private readonly pods: Informer<PodObject>;
  private readonly namespaces: Informer;
  private readonly policies: Informer<MultiNetworkPolicy>;
  /** netns + table -> last script applied. */
  private readonly applied = new Map<string, string>();
  readonly request: () => void;
  private readonly subscriptions: (() => void)[] = [];

  constructor(deps: MultiPolicyDeps) {
    this.d = deps;
    this.pods = deps.caches.pods;
    this.namespaces = deps.caches.namespaces;
    this.policies = deps.caches.multiNetworkPolicies;
    this.request = debounced(() => this.sync(), 100, deps.log);
    for (const inf of [this.pods, this.namespaces, this.policies] as Informer<KubeObject>[])
      for (const ev of ['add', 'update', 'delete'] as const)
        this.subscriptions.push(inf.on(ev, this.request));
  }

  /** Starts the watches (idempotent: they are shared with the rest of the agent). */
  start(): void {
    this.pods.start();
    this.namespaces.start();
    this.policies.start();
  }

  /** Unsubscribes; the shared watches are stopped by their owner (the agent's InformerSet). */
  stop(): Promise<void> {
    for (const unsubscribe of this.subscriptions.splice(0)) unsubscribe();
    return Promise.resolve();
  }

  /** Recompiles and applies every attachment's table on this node. */
  async sync(): Promise<void> {
    if (!this.policies.hasSynced() || !this.pods.hasSynced() || !this.namespaces.hasSynced()) return;
    const input = {
      pods: this.pods.list(),
      namespaces: this.namespaces.list(),
      policies: this.policies.list(),
    };
    const live = new Set<string>();
    for (const a of await this.d.attachments()) {
      if (!a.netns) continue;
      const args = parseCniArgs(a.cniArgs.map(([k, v]) => `${k}=${v}`).join(';'));
      const podKey = `${args.K8S_POD_NAMESPACE ?? ''}/${args.K8S_POD_NAME ?? ''}`;
      const pod = this.pods.get(podKey);
      const entry = parseNetworkStatus(pod?.metadata.annotations?.[NETWORK_STATUS_ANNOTATION]).find(
        (e) => e.interface === a.ifName && e.name.includes('/'),
      );
      if (!entry) continue; // network-status not written yet: the pod update will bring us back
      const table = multiPolicyTable(a.ifName);
      const key = `${a.netns}\u0000${table}`;
      live.add(key);
      const rs = compileMultiPolicy({ pod: podKey, network: entry.name, ifname: a.ifName }, input);
      const script = rs ? multiPolicyScript(rs) : `table inet ${table} {}\ndelete table inet ${table}\n`; // no policy: nothing enforced
      if (this.applied.get(key) === script) continue;
      const r = await runResult('nsenter', [`--net=${a.netns}`, '--', 'nft', '-f', '-'], script);
      if (r.code !== 0) {
        this.d.log.warn(
          { pod: podKey, ifname: a.ifName, err: r.stderr.trim() },
          'MultiNetworkPolicy not applied',
        );
        continue;
      }
      this.applied.set(key, script);
      this.d.log.info(
        { pod: podKey, network: entry.name, ifname: a.ifName, enforced: !!rs },
        'MultiNetworkPolicy applied',
      );
    }
    for (const k of [...this.applied.keys()]) if (!live.has(k)) this.applied.delete(k);
  }
}
