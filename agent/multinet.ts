// Delegation of a pod's extra networks (NPWG `k8s.v1.cni.cncf.io/networks`), run by the CNI
// service after eth0: each requested NAD's config goes through the one runner (src/cni/runner.ts)
// against the node's CNI bin dir, with an on-disk cache per attachment so DEL/CHECK use what ADD
// used after a restart or after the NAD changed or vanished.
//   ADD is all or nothing: on any failure every attachment already made is deleted (which
//     releases its addresses through its IPAM's DEL), a Pod Event names the element, and the
//     caller tears eth0 down.
//   DEL walks the cache for the container, never the pod or NADs (both may be gone), and never
//     fails: what cannot be deleted now is logged and left to GC.
// Pods come from the agent's pod cache and NADs from a watch cache: no API request per ADD.
import { ResultCache, attachmentPod, type CachedAttachment } from '../src/cni/cache.ts';
import { CniError, CniErrorCode } from '../src/cni/errors.ts';
import {
  CniInvokeError,
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  gcNetworkList,
  missingPlugins,
  type NetworkConfigList,
  type RunnerOptions,
  type RuntimeConf,
} from '../src/cni/runner.ts';
import { loadConfListNamed } from '../src/cni/runner-config.ts';
import { parseCniArgs, type CniEnv, type CniResult, type NetConf } from '../src/cni/types.ts';
import { run } from '../src/dataplane/exec.ts';
import { localInterfaces } from '../src/dataplane/netns.ts';
import { postEvent } from '../src/framework/events.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { ApiError } from '../src/kube/errors.ts';
import { createInformer, type Informer } from '../src/kube/informer.ts';
import { Builtin } from '../src/kube/resource.ts';
import type { Logger } from '../src/log/logger.ts';
import {
  AttachmentRequestError,
  NETWORKS_ANNOTATION,
  NETWORK_STATUS_ANNOTATION,
  NetworksAnnotationError,
  attachmentStatus,
  defaultRouteCommands,
  delegateProblems,
  delegateStatus,
  networkStatusJson,
  parseNetworksAnnotation,
  resolveAttachments,
  statusEntry,
  unhonouredRequest,
  type AttachmentPlan,
  type DelegateProblem,
  type NetworkAttachmentDefinition,
  type NetworkInUse,
} from '../src/multinet/index.ts';
import type { PodCache } from './pods.ts';

export const ATTACH_FAILED_REASON = 'NetworkAttachmentFailed';

export interface MultinetDeps {
  kube: KubeClient;
  pods: PodCache;
  /** The node's CNI bin dir(s): delegates and IPAM plugins are looked up here. */
  binDirs: string[];
  /** Networks of NADs without spec.config: a conflist/conf here named like the NAD (NPWG). */
  nadConfDir?: string;
  /** Where this agent serves CNI: delegates' `ipam: {type: trellis}` is pointed here. */
  socketPath: string;
  /** Agent state dir: the attachment cache lives in <stateDir>/multinet/results. */
  stateDir: string;
  node: string;
  log: Logger;
  /** network-status PATCH attempts before ADD gives up on it (ADD itself still succeeds). @default 3 */
  statusAttempts?: number;
}

/** MultiNetworkPolicy enforcement, told of attachments as ADD and DEL make and remove them. */
export interface AttachmentPolicy {
  /** Isolates the new attachments a policy selects before ADD returns; throws when it cannot. */
  attachmentsAdded(
    pod: { namespace: string; name: string },
    added: { netns: string; ifname: string; network: string; ips: string[] }[],
  ): Promise<void>;
  /** Before the delegates run: closes the interfaces whose network any policy is for. */
  attachmentsAdding(netns: string, planned: { ifname: string; network: string }[]): Promise<void>;
  attachmentRemoved(netns: string, ifname: string): Promise<void>;
}

interface Attached {
  plan: AttachmentPlan;
  result: CniResult;
}

export class Multinet {
  private readonly d: MultinetDeps;
  readonly nads: Informer<NetworkAttachmentDefinition>;
  private readonly runner: RunnerOptions;
  private readonly cache: ResultCache;
  private policy?: AttachmentPolicy;

  constructor(deps: MultinetDeps) {
    this.d = deps;
    this.nads = createInformer<NetworkAttachmentDefinition>({
      kube: deps.kube,
      resource: Builtin.NetworkAttachmentDefinition,
      logger: deps.log.child({ part: 'nads' }),
    });
    this.cache = new ResultCache(`${deps.stateDir}/multinet`);
    this.runner = { binDirs: deps.binDirs, cache: this.cache, timeoutMs: 30_000 };
  }

  start(): void {
    this.nads.start();
  }

  /** MultiNetworkPolicy enforcement to consult on ADD and DEL (it reads attachments from us). */
  usePolicy(policy: AttachmentPolicy): void {
    this.policy = policy;
  }

  async stop(): Promise<void> {
    await this.nads.stop();
  }

  /** Every extra-network attachment on this node, as the cache records it. */
  attachments(): Promise<CachedAttachment[]> {
    return this.cache.list();
  }

  private nad(namespace: string, name: string): NetworkAttachmentDefinition | undefined {
    return this.nads.get(`${namespace}/${name}`);
  }

  /**
   * Attaches every requested network after eth0 and records network-status. Returns the primary
   * result unchanged (a meta-plugin answers with the pod network's result). Throws CniError.
   */
  async add(env: CniEnv, config: NetConf, primary: CniResult): Promise<CniResult> {
    const args = parseCniArgs(env.CNI_ARGS);
    const namespace = args.K8S_POD_NAMESPACE ?? '';
    const name = args.K8S_POD_NAME ?? '';
    if (!namespace || !name) return primary;
    const pod = await this.d.pods.get(namespace, name);
    const raw = pod?.annotations[NETWORKS_ANNOTATION];
    if (!raw || raw.trim() === '') return primary;
    const podRef = { namespace, name, ...(pod?.uid ? { uid: pod.uid } : {}) };
    const attached: Attached[] = [];
    let plans: AttachmentPlan[] = [];
    try {
      if (!this.nads.hasSynced()) await this.waitNads();
      const dir = this.d.nadConfDir;
      plans = resolveAttachments(
        parseNetworksAnnotation(raw),
        namespace,
        env.CNI_IFNAME!,
        (ns, n) => this.nad(ns, n),
        dir ? { dir, load: (n) => loadConfListNamed(dir, n) } : undefined,
      ).map((p) => ({ ...p, config: withOurSocket(p.config, this.d.socketPath) }));
      // One network at a time, in the annotation's order, as the NPWG spec requires (7.2, 7.3): a
      // failure stops the ADD before the networks after it are tried, and every one started is
      // undone. An interface a policy may govern is closed before it exists (and opened to what
      // the policy allows once its address is known), so it never carries a packet unenforced.
      await this.policy?.attachmentsAdding(
        env.CNI_NETNS!,
        plans.map((p) => ({ ifname: p.ifname, network: p.key })),
      );
      for (const plan of plans) {
        // Recorded before it runs: a failed one may be half made, and its DEL (from the cache)
        // undoes it below.
        const entry: Attached = { plan, result: { cniVersion: plan.config.cniVersion } };
        attached.push(entry);
        try {
          entry.result = await addNetworkList(this.runner, plan.config, this.runtimeConf(env, plan));
          const ignored = unhonouredRequest(plan.selection, plan.ifname, entry.result);
          if (ignored) throw new Error(ignored);
        } catch (err: unknown) {
          throw new AttachmentRequestError(
            `network ${plan.selection.index + 1} (${plan.key}) on ${plan.ifname}: ${message(err)}`,
            { cause: err },
          );
        }
      }
      const entries = attached.map((a) => ({
        attached: a,
        status: statusEntry({
          name: a.plan.key,
          ifname: a.plan.ifname,
          result: a.result,
          isDefault: !!a.plan.selection.defaultRoute?.length,
        }),
      }));
      // Isolated before the pod can send or receive its first packet on the new interfaces.
      await this.policy?.attachmentsAdded(
        podRef,
        entries.map((e) => ({
          netns: env.CNI_NETNS!,
          ifname: e.status.interface!,
          network: e.status.name,
          ips: e.status.ips ?? [],
        })),
      );
      const routes = defaultRouteCommands(
        attached
          .filter((a) => a.plan.selection.defaultRoute?.length)
          .map((a) => ({
            where: `network ${a.plan.selection.index + 1} (${a.plan.key})`,
            ifname: a.plan.ifname,
            gateways: a.plan.selection.defaultRoute!,
            result: a.result,
          })),
      );
      for (const cmd of routes) await run('nsenter', [`--net=${env.CNI_NETNS!}`, '--', ...cmd]);
      const moved = routes.length > 0;
      await this.writeStatus(podRef, [
        statusEntry({ name: config.name, ifname: env.CNI_IFNAME!, result: primary, isDefault: !moved }),
        ...entries.map((e) => e.status),
      ]);
      this.d.log.info(
        { pod: `${namespace}/${name}`, networks: attached.map((a) => `${a.plan.key}@${a.plan.ifname}`) },
        'extra networks attached',
      );
      return primary;
    } catch (err: unknown) {
      // All or nothing: undo in reverse; each DEL releases what that network's IPAM gave.
      for (const p of plans) await this.policy?.attachmentRemoved(env.CNI_NETNS!, p.ifname);
      for (const a of attached.reverse()) {
        await delNetworkList(this.runner, a.plan.config, this.runtimeConf(env, a.plan)).catch((e: unknown) =>
          this.d.log.error(
            { err: message(e), network: a.plan.key },
            'could not undo an attachment after a failed ADD; GC will',
          ),
        );
      }
      const e = toCniError(err);
      await postEvent(
        this.d.kube,
        { apiVersion: 'v1', kind: 'Pod', metadata: podRef },
        { type: 'Warning', reason: ATTACH_FAILED_REASON, message: e.message, component: 'trellis-agent' },
        this.d.log,
      );
      throw e;
    }
  }

  private async waitNads(): Promise<void> {
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(
        () =>
          reject(new CniError(CniErrorCode.TryAgainLater, 'NetworkAttachmentDefinitions are not loaded yet')),
        5000,
      ).unref(),
    );
    await Promise.race([this.nads.synced, timeout]);
  }

  private runtimeConf(env: CniEnv, plan: AttachmentPlan): RuntimeConf {
    return {
      containerId: env.CNI_CONTAINERID!,
      netns: env.CNI_NETNS!,
      ifName: plan.ifname,
      args: cniArgPairs(env.CNI_ARGS),
      capabilityArgs: plan.capabilityArgs,
    };
  }

  /** Merge-patches network-status with bounded retries; a failure is logged, never fails ADD. */
  private async writeStatus(
    pod: { namespace: string; name: string },
    entries: ReturnType<typeof statusEntry>[],
  ): Promise<void> {
    const attempts = this.d.statusAttempts ?? 3;
    const patch = { metadata: { annotations: { [NETWORK_STATUS_ANNOTATION]: networkStatusJson(entries) } } };
    for (let i = 1; i <= attempts; i++) {
      try {
        await this.d.kube.mergePatch(Builtin.Pod, pod.name, patch, pod.namespace);
        return;
      } catch (err: unknown) {
        if (err instanceof ApiError && err.code === 404) return; // pod gone: nothing to report on
        this.d.log.warn(
          { err: message(err), attempt: i, pod: `${pod.namespace}/${pod.name}` },
          'network-status',
        );
        if (i < attempts) await new Promise((r) => setTimeout(r, 100 * i));
      }
    }
  }

  /**
   * DEL of every cached attachment of the container, one at a time, the last attached first. A
   * failure does not stop the others; once all were tried, failures are thrown together (NPWG 7.2:
   * the runtime hears of it and retries, and the failed ones' cache entries stay for that retry).
   * What is already gone is no failure: delegates answer DEL of a missing interface with success.
   */
  async del(env: CniEnv): Promise<void> {
    const containerId = env.CNI_CONTAINERID!;
    const mine = (await this.cache.list({ containerId })).sort((a, b) =>
      b.ifName.localeCompare(a.ifName, 'en', { numeric: true }),
    );
    const failed: string[] = [];
    for (const a of mine) {
      try {
        await this.policy?.attachmentRemoved(env.CNI_NETNS ?? a.netns ?? '', a.ifName);
        await delNetworkList(
          this.runner,
          undefined,
          {
            containerId,
            netns: env.CNI_NETNS ?? a.netns ?? '',
            ifName: a.ifName,
            args: a.cniArgs,
            capabilityArgs: {},
          },
          undefined,
          a.networkName,
        );
      } catch (err: unknown) {
        failed.push(`${a.networkName} on ${a.ifName}: ${message(err)}`);
        this.d.log.warn(
          { err: message(err), containerId, ifname: a.ifName, network: a.networkName },
          'extra network DEL failed; its cache entry stays for the retry and GC',
        );
      }
    }
    if (failed.length)
      throw new CniError(CniErrorCode.Internal, `DEL of extra networks failed: ${failed.join('; ')}`);
  }

  /** CHECK every cached attachment of the container (what ADD recorded). */
  async check(env: CniEnv): Promise<void> {
    const containerId = env.CNI_CONTAINERID!;
    for (const a of await this.cache.list({ containerId })) {
      try {
        await checkNetworkList(this.runner, a.config, {
          containerId,
          netns: env.CNI_NETNS!,
          ifName: a.ifName,
          args: a.cniArgs,
          capabilityArgs: a.capabilityArgs,
        });
      } catch (err: unknown) {
        throw new CniError(
          CniErrorCode.Internal,
          `CHECK of ${a.networkName} on ${a.ifName}: ${message(err)}`,
        );
      }
    }
  }

  /**
   * GC: attachments of containers the runtime no longer lists are deleted; then each network in
   * use gets its own GC with its valid attachments, and `collectIpam` (our IPAM's GC) for each
   * network whose addresses come from it.
   */
  async gc(
    validContainers: Set<string>,
    collectIpam?: (ipamConf: NetConf) => Promise<void>,
  ): Promise<{ deleted: number }> {
    const all = await this.cache.list();
    let deleted = 0;
    for (const a of all.filter((x) => !validContainers.has(x.containerId))) {
      try {
        await delNetworkList(
          this.runner,
          undefined,
          {
            containerId: a.containerId,
            netns: a.netns ?? '',
            ifName: a.ifName,
            args: a.cniArgs,
            capabilityArgs: {},
          },
          undefined,
          a.networkName,
        );
        deleted++;
      } catch (err: unknown) {
        this.d.log.warn({ err: message(err), network: a.networkName }, 'GC could not delete an attachment');
      }
    }
    const byNetwork = new Map<string, (typeof all)[number][]>();
    for (const a of all.filter((x) => validContainers.has(x.containerId))) {
      byNetwork.set(a.networkName, [...(byNetwork.get(a.networkName) ?? []), a]);
    }
    for (const list of byNetwork.values()) {
      const config = list[0]!.config;
      const valid = list.map((a) => ({ containerID: a.containerId, ifname: a.ifName }));
      await gcNetworkList(this.runner, config, valid).catch((err: unknown) =>
        this.d.log.warn({ err: message(err), network: config.name }, 'network GC failed'),
      );
      // Our IPAM collects the network itself: a delegate below spec 1.1 (or a list below 1.1.0)
      // never forwards GC to it. Collecting twice is harmless.
      for (const p of config.plugins) {
        const ipam = p.ipam as { type?: unknown } | undefined;
        if (ipam?.type !== 'trellis' || !collectIpam) continue;
        await collectIpam({
          cniVersion: config.cniVersion,
          name: config.name,
          type: 'trellis',
          ipam,
          'cni.dev/valid-attachments': valid,
        } as NetConf).catch((err: unknown) =>
          this.d.log.warn({ err: message(err), network: config.name }, 'attachment IPAM GC failed'),
        );
      }
    }
    return { deleted };
  }

  /**
   * STATUS of the extra networks in use on this node: each delegate that cannot run (plugin binary
   * missing: 50; master interface missing: 51), naming its NAD, the node and the fix.
   */
  async status(): Promise<DelegateProblem | undefined> {
    const byNetwork = new Map<string, CachedAttachment[]>();
    for (const a of await this.cache.list()) {
      // An attachment of a pod that is gone is not an existing container: its DEL failed (the
      // reference macvlan refuses DEL while its master is missing) and GC retries it.
      const [namespace = '', name = ''] = attachmentPod(a).split('/');
      if (this.d.pods.exists(namespace, name) === false) continue;
      byNetwork.set(a.networkName, [...(byNetwork.get(a.networkName) ?? []), a]);
    }
    const local = localInterfaces();
    const view = {
      node: this.d.node,
      binDirs: this.d.binDirs,
      missingPlugins: (c: NetworkConfigList) => missingPlugins(this.d.binDirs, c),
      hasInterface: (n: string) => local.has(n),
    };
    const networks: NetworkInUse[] = [...byNetwork.values()].map((list) => ({
      networkName: list[0]!.networkName,
      config: list[0]!.config,
      pods: list.map(attachmentPod).filter((p) => p !== '/'),
    }));
    // Only a network with a problem is worth naming its NAD (a pod or NAD lookup each).
    const problems: DelegateProblem[] = [];
    for (const n of networks) {
      const found = delegateProblems([n], view);
      if (found.length === 0) continue;
      const nad = await this.nadOf(byNetwork.get(n.networkName)!);
      problems.push(...(nad ? delegateProblems([{ ...n, nad }], view) : found));
    }
    return delegateStatus(problems);
  }

  /**
   * The NAD ("namespace/name") a cached network came from: the attached pod's network-status
   * names it per interface; else a NAD whose config carries that network name (the pod's
   * namespace first).
   */
  private async nadOf(attachments: CachedAttachment[]): Promise<string | undefined> {
    for (const a of attachments) {
      const [namespace, name] = attachmentPod(a).split('/') as [string, string];
      if (!namespace || !name) continue;
      const pod = await this.d.pods.get(namespace, name).catch(() => undefined);
      const entry = attachmentStatus(pod?.annotations, a.ifName);
      if (entry) return entry.name;
    }
    const networkName = attachments[0]!.networkName;
    const podNamespace = attachmentPod(attachments[0]!).split('/')[0];
    const named = this.nads.list().filter((n) => configName(n.spec?.config) === networkName);
    const pick = named.find((n) => n.metadata.namespace === podNamespace) ?? named[0];
    return pick ? `${pick.metadata.namespace ?? ''}/${pick.metadata.name}` : undefined;
  }
}

/** The `name` of a NAD's CNI config, or undefined when it is not JSON with a name. */
function configName(text: string | undefined): string | undefined {
  try {
    const name = (JSON.parse(text ?? '') as { name?: unknown }).name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A NAD is cluster-wide and cannot know where each node's agent listens: our IPAM in a delegate
 * is pointed at this agent's socket (the cache keeps the config, so DEL uses the same).
 */
function withOurSocket(list: NetworkConfigList, socketPath: string): NetworkConfigList {
  return {
    ...list,
    plugins: list.plugins.map((p) => {
      const ipam = p.ipam as { type?: unknown } | undefined;
      return ipam?.type === 'trellis' ? { ...p, ipam: { ...ipam, socket: socketPath } } : p;
    }),
  };
}

/** The runtime's CNI_ARGS for a delegate, with IgnoreUnknown=1 so plugins accept K8S_POD_* keys. */
function cniArgPairs(raw: string | undefined): [string, string][] {
  const pairs = Object.entries(parseCniArgs(raw));
  return pairs.some(([k]) => k === 'IgnoreUnknown') ? pairs : [['IgnoreUnknown', '1'], ...pairs];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Request mistakes are the spec's "invalid config" (7); a delegate's own code passes through. */
function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof NetworksAnnotationError || err instanceof AttachmentRequestError) {
    // A delegate's failure keeps the delegate's code; a request we refused is invalid config.
    const cause = err.cause;
    const code = cause instanceof CniInvokeError ? cause.code : CniErrorCode.InvalidConfig;
    return new CniError(code, err.message);
  }
  return new CniError(CniErrorCode.Internal, message(err));
}

/** The node's own interfaces for NodeNetworkStatus: pod veths (prefix + 12 hex) and lo left out. */
export function hostInterfaces(devicePrefix: string): string[] {
  return [...localInterfaces()].filter(
    (n) =>
      n !== 'lo' &&
      !(n.startsWith(devicePrefix) && n.length === 15 && /^[0-9a-f]+$/.test(n.slice(devicePrefix.length))),
  );
}
