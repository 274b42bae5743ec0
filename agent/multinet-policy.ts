// MultiNetworkPolicy enforcement: for every extra-network attachment on this node (from the
// delegation cache), the policies for that network are compiled by the NetworkPolicy compiler
// (through src/multinet/policy.ts) into one nftables table per interface, installed inside the
// pod's network namespace with `nft -f -` (argv + stdin, no shell). Level-based: any change to
// policies, pods (labels, network-status) or namespaces recompiles everything for this node; a
// script equal to the last one applied is skipped. The applied scripts are only an optimisation:
// after a restart every table is replaced again (renderFull is an atomic replacement).
import { attachmentPod, type CachedAttachment } from '../src/cni/cache.ts';
import { CniError, CniErrorCode } from '../src/cni/errors.ts';
import { runResult } from '../src/dataplane/exec.ts';
import type { Informer } from '../src/kube/informer.ts';
import type { KubeObject } from '../src/kube/object.ts';
import type { Logger } from '../src/log/logger.ts';
import {
  NETWORK_STATUS_ANNOTATION,
  compileMultiPolicy,
  multiPolicyScript,
  multiPolicyTable,
  networkStatusJson,
  attachmentStatus,
  policyNetworks,
  type MultiNetworkPolicy,
} from '../src/multinet/index.ts';
import type { PodObject } from '../src/policy/index.ts';
import { KeyedMutex } from '../src/util/keyed-mutex.ts';
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
  /** One apply at a time per table: a policy pass and an ADD never interleave on one interface. */
  private readonly serial = new KeyedMutex();

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
    if (!this.synced()) return;
    // Keys recorded by an ADD while this pass runs are not in its attachment list: keep them.
    const known = new Set(this.applied.keys());
    const attachments = await this.d.attachments();
    // No policy, and every attachment already without a table (the last script applied to it
    // removed it): every target is "no table" again, so nothing to compile or parse. On a node
    // without MultiNetworkPolicy this makes a pod event cost nothing here; it was most of the
    // agent's allocations in a burst of ADDs (bench-multinet). A restarted agent has applied
    // nothing yet, so its first pass still removes tables left from deleted policies.
    if (
      this.policies.list().length === 0 &&
      attachments.every(
        (a) =>
          !a.netns || this.applied.get(tableKey(a.netns, a.ifName)) === noTable(multiPolicyTable(a.ifName)),
      )
    ) {
      const live = new Set(attachments.map((a) => tableKey(a.netns ?? '', a.ifName)));
      for (const k of known) if (!live.has(k)) this.applied.delete(k);
      return;
    }
    const input = this.input();
    const live = new Set<string>();
    for (const a of attachments) {
      if (!a.netns) continue;
      const podKey = attachmentPod(a);
      const key = tableKey(a.netns, a.ifName);
      live.add(key);
      const pod = this.pods.get(podKey);
      const entry = attachmentStatus(pod?.metadata.annotations, a.ifName);
      // network-status not written yet: ADD installed what applied then (attachmentsAdded), and
      // the pod's update brings us back.
      if (!entry) continue;
      const target = { pod: podKey, network: entry.name, ifname: a.ifName, netns: a.netns };
      await this.serial.run(key, () => this.apply(target, this.scriptFor(target, input)));
    }
    for (const k of known) if (!live.has(k)) this.applied.delete(k);
  }

  private synced(): boolean {
    return this.policies.hasSynced() && this.pods.hasSynced() && this.namespaces.hasSynced();
  }

  private input(): PolicyInput {
    return { pods: this.pods.list(), namespaces: this.namespaces.list(), policies: this.policies.list() };
  }

  private scriptFor(t: Target, input: PolicyInput): string {
    const rs = compileMultiPolicy(t, input);
    // No policy for the network: nothing enforced, and a table left from before is removed.
    return rs ? multiPolicyScript(rs) : noTable(multiPolicyTable(t.ifname));
  }

  /** Installs `script` unless it is there already; nft's complaint (logged) when it refused it. */
  private async apply(t: Target, script: string): Promise<string | undefined> {
    const key = tableKey(t.netns, t.ifname);
    if (this.applied.get(key) === script) return undefined;
    const r = await runResult('nsenter', [`--net=${t.netns}`, '--', 'nft', '-f', '-'], script);
    if (r.code !== 0) {
      this.d.log.warn(
        { pod: t.pod, ifname: t.ifname, err: r.stderr.trim() },
        'MultiNetworkPolicy not applied',
      );
      return r.stderr.trim() || `nft exited ${r.code}`;
    }
    this.applied.set(key, script);
    this.d.log.info(
      {
        pod: t.pod,
        network: t.network,
        ifname: t.ifname,
        enforced: script !== noTable(multiPolicyTable(t.ifname)),
      },
      'MultiNetworkPolicy applied',
    );
    return undefined;
  }

  /**
   * Called by ADD before it returns, with the pod's new attachments: each one that a
   * MultiNetworkPolicy selects is isolated now, not at the next pass (which waits for the
   * network-status PATCH), so the pod's first packet on it already meets the policy. A fresh
   * interface has no table: when no policy applies nothing is run. Throws when a table that
   * should be installed cannot be (ADD then fails rather than leave the interface open).
   */
  async attachmentsAdded(
    pod: { namespace: string; name: string },
    added: { netns: string; ifname: string; network: string; ips: string[] }[],
  ): Promise<void> {
    if (added.length === 0) return;
    await this.waitSynced();
    const podKey = `${pod.namespace}/${pod.name}`;
    const policies = this.policies.list();
    const governed = added.filter((a) => policies.some((p) => policyNetworks(p).includes(a.network)));
    // A fresh interface has no table: for networks no policy is for, there is nothing to run.
    for (const a of added.filter((x) => !governed.includes(x)))
      this.applied.set(tableKey(a.netns, a.ifname), noTable(multiPolicyTable(a.ifname)));
    if (governed.length === 0) return;
    // The labels decide whether a policy selects the pod: the shared pod cache has it (ADD read
    // its annotations there) unless the watch lags its creation; then wait a little, else 11.
    const known = await this.waitPod(podKey);
    // The pod as it will be once network-status is written: the compiler finds its addresses.
    const status = networkStatusJson(
      added.map((a) => ({ name: a.network, interface: a.ifname, ips: a.ips, default: false })),
    );
    const subject: PodObject = {
      ...known,
      metadata: {
        ...known.metadata,
        annotations: { ...known.metadata.annotations, [NETWORK_STATUS_ANNOTATION]: status },
      },
    };
    const input = this.input();
    input.pods = [...input.pods.filter((p) => keyOfPod(p) !== podKey), subject];
    for (const a of governed) {
      const target = { pod: podKey, network: a.network, ifname: a.ifname, netns: a.netns };
      await this.serial.run(tableKey(a.netns, a.ifname), async () => {
        const failed = await this.apply(target, this.scriptFor(target, input));
        if (failed)
          throw new Error(
            `MultiNetworkPolicy for ${a.network} on ${a.ifname} could not be installed: ${failed}`,
          );
      });
    }
  }

  /**
   * Called by ADD before the delegates run: every planned interface whose network some policy is
   * for gets a table that drops its traffic (DHCP aside, for a dhcp IPAM), so that between the
   * delegate bringing it up and attachmentsAdded installing the policy (which needs the address
   * IPAM gives) no packet crosses it unenforced. Whether a policy selects the pod is decided
   * then; one that does not opens it again.
   */
  async attachmentsAdding(netns: string, planned: { ifname: string; network: string }[]): Promise<void> {
    if (planned.length === 0) return;
    await this.waitSynced();
    const policies = this.policies.list();
    for (const a of planned.filter((x) => policies.some((p) => policyNetworks(p).includes(x.network)))) {
      const target = { pod: '', network: a.network, ifname: a.ifname, netns };
      await this.serial.run(tableKey(netns, a.ifname), async () => {
        const failed = await this.apply(target, closedTable(a.ifname));
        if (failed)
          throw new Error(`could not close ${a.ifname} for ${a.network} before it is attached: ${failed}`);
      });
    }
  }

  /**
   * Called by DEL for each attachment: a table installed for the interface goes with it, so a
   * later ADD in the same namespace (a runtime retrying) does not meet an old ruleset.
   */
  async attachmentRemoved(netns: string, ifname: string): Promise<void> {
    const key = tableKey(netns, ifname);
    await this.serial.run(key, async () => {
      const last = this.applied.get(key);
      this.applied.delete(key);
      const none = noTable(multiPolicyTable(ifname));
      if (last === undefined || last === none) return;
      // The netns may be gone already, and with it the table: nothing to report then.
      await runResult('nsenter', [`--net=${netns}`, '--', 'nft', '-f', '-'], none).catch(() => undefined);
    });
  }

  private async waitSynced(): Promise<void> {
    for (let waited = 0; !this.synced(); waited += 50) {
      if (waited >= 5000)
        throw new CniError(CniErrorCode.TryAgainLater, 'MultiNetworkPolicies are not loaded yet');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async waitPod(podKey: string): Promise<PodObject> {
    for (let waited = 0; ; waited += 50) {
      const pod = this.pods.get(podKey);
      if (pod) return pod;
      if (waited >= 2000)
        throw new CniError(
          CniErrorCode.TryAgainLater,
          `pod ${podKey} is not in the agent's pod cache yet: its MultiNetworkPolicies cannot be applied`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

interface Target {
  pod: string;
  network: string;
  ifname: string;
  netns: string;
}

type PolicyInput = Parameters<typeof compileMultiPolicy>[1] & { pods: PodObject[] };

function tableKey(netns: string, ifname: string): string {
  return `${netns}\u0000${multiPolicyTable(ifname)}`;
}

function keyOfPod(p: PodObject): string {
  return `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;
}

/** The table that closes an interface until its policy is known (DHCP still passes). */
function closedTable(ifname: string): string {
  const table = multiPolicyTable(ifname);
  const dev = JSON.stringify(ifname);
  return [
    `table inet ${table} {}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  chain ingress {',
    '    type filter hook input priority filter; policy accept;',
    `    iifname ${dev} udp dport 68 accept`,
    `    iifname ${dev} drop`,
    '  }',
    '  chain egress {',
    '    type filter hook output priority filter; policy accept;',
    `    oifname ${dev} udp dport 67 accept`,
    `    oifname ${dev} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Removes the table whether or not it exists (declaring an empty one first makes delete safe). */
function noTable(table: string): string {
  return `table inet ${table} {}\ndelete table inet ${table}\n`;
}
