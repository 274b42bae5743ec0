// The CNI verbs as the agent serves them, one function per verb like the reference plugins.
// ADD: address(es) from IPAM, then a routed veth pair (src/dataplane/podnet.ts); any failure
// after IPAM releases what was taken. DEL: remove the pair, then release; a missing netns or
// interface is success. CHECK compares the kernel with prevResult. STATUS answers from the
// node's programming state. GC releases IPAM attachments (and node-side veths) not listed as
// valid. The same agent also serves attachments' IPAM (`ipam: {type: trellis}`), ADD/DEL/CHECK.
import { isIP } from 'node:net';
import { CniError, CniErrorCode } from '../src/cni/errors.ts';
import {
  parseCniArgs,
  type CniAttachment,
  type CniEnv,
  type CniIPConfig,
  type CniResult,
  type NetConf,
} from '../src/cni/types.ts';
import { validateConfig, validateEnv } from '../src/cni/validate.ts';
import { convertResult, isSupportedVersion, LATEST_VERSION, SUPPORTED_VERSIONS } from '../src/cni/version.ts';
import type { WireAnswer, WireRequest } from '../src/cni/wire.ts';
import { CommandError, CommandTimeoutError, ProcessBusyError } from '../src/dataplane/exec.ts';
import { localInterfaces, netnsKind } from '../src/dataplane/netns.ts';
import { KeyedMutex } from '../src/util/keyed-mutex.ts';
import {
  GATEWAY_MAC,
  GATEWAY_V4,
  GATEWAY_V6,
  deleteHostVeth,
  addressPodLink,
  createPodLink,
  hostVethName,
  podMac,
  readPodInterface,
  type PodAddress,
} from '../src/dataplane/podnet.ts';
import { ipJsonBatch, type IpRoute } from '../src/dataplane/ip.ts';
import { IpamError } from '../src/ipam/index.ts';
import type { AllocatedIP, NodeIpam } from '../src/ipam/types.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { ApiError } from '../src/kube/errors.ts';
import type { Logger } from '../src/log/logger.ts';
import type { Multinet } from './multinet.ts';
import type { NodeNetwork } from './network.ts';
import type { PodCache } from './pods.ts';
import type { RequestTiming } from './server.ts';

/** Pod annotation asking for static pod-network addresses: "10.244.1.7" or "10.244.1.7,fd00::7". */
export const STATIC_IP_ANNOTATION = 'network.trellis.dev/ip';

interface PodIdentity {
  namespace: string;
  pod: string;
  uid?: string;
}

export interface CniServiceDeps {
  kube: KubeClient;
  /** Pod annotations by namespace/name (cache with API fallback). */
  pods: PodCache;
  ipam: NodeIpam;
  network: NodeNetwork;
  devicePrefix: string;
  /**
   * Name of the pod network this agent serves (the `name` of the conflist it installs). GC for
   * any other network name touches nothing: its valid list says nothing about our attachments.
   */
  networkName?: string;
  /** A request still running after this long is answered with code 11 (and an ADD rolled back). */
  requestDeadlineMs?: number;
  /** GC never releases an address younger than this, so an ADD in flight is not raced. */
  gcGraceMs: number;
  log: Logger;
  /** NetworkPolicy: programs a new pod's verdicts before ADD returns (agent/policy.ts). */
  policy?: { podAdded(namespace: string, name: string, ips: string[]): Promise<void> };
  /** Extra networks (NPWG annotation) delegated after eth0; absent: none. */
  multinet?: Multinet;
}

function ok(result?: CniResult): WireAnswer {
  return { exitCode: 0, stdout: result ? JSON.stringify(result) : '' };
}

function failed(err: unknown, cniVersion: string): WireAnswer {
  return { exitCode: 1, stdout: JSON.stringify(CniError.from(err).toJSON(cniVersion)) };
}

/** Network errors (and undici's timeouts) that mean "the API server did not answer in time". */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Default per-request deadline: below the plugin's (docs/cni-shim.md), so the agent answers first. */
export const REQUEST_DEADLINE_MS = 90_000;

/** Maps a failure to the CNI code that tells the runtime what to do next. */
export function toCniError(err: unknown, what: string): CniError {
  if (err instanceof CniError) return err;
  // IPAM declares the code of each of its errors (exhausted pool: 11, bad static IP: 7...).
  if (err instanceof IpamError) return new CniError(err.cniCode, `${what}: ${err.message}`);
  if (err instanceof ApiError)
    return new CniError(CniErrorCode.TryAgainLater, `${what}: Kubernetes API: ${err.message}`);
  if (err instanceof ProcessBusyError || err instanceof CommandTimeoutError)
    return new CniError(CniErrorCode.TryAgainLater, `${what}: ${err.message}`);
  if (err instanceof CommandError) return new CniError(CniErrorCode.Internal, `${what}: ${err.message}`);
  const e = err as (NodeJS.ErrnoException & { cause?: { code?: string } }) | undefined;
  const code = e?.code ?? e?.cause?.code;
  if ((code && UNREACHABLE.has(code)) || e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return new CniError(CniErrorCode.TryAgainLater, `${what}: Kubernetes API unreachable: ${String(err)}`);
  }
  return new CniError(CniErrorCode.Internal, `${what}: ${err instanceof Error ? err.message : String(err)}`);
}

export class CniService {
  private readonly d: CniServiceDeps;

  constructor(deps: CniServiceDeps) {
    this.d = deps;
  }

  /** Entry point for one request from the shim. Never throws: every failure is a CNI error answer. */
  async handle(req: WireRequest, timing?: RequestTiming): Promise<WireAnswer> {
    const raw = (req ?? {}) as Partial<WireRequest>;
    const rawVersion = (raw.config as { cniVersion?: unknown } | undefined)?.cniVersion;
    // Errors are written in the caller's version when we speak it, else in ours.
    const cniVersion = isSupportedVersion(rawVersion) ? rawVersion : LATEST_VERSION;
    const rawEnv = raw.env as Partial<CniEnv> | undefined;
    const containerID = typeof rawEnv?.CNI_CONTAINERID === 'string' ? rawEnv.CNI_CONTAINERID : undefined;
    const started = Date.now();
    try {
      if (rawEnv?.CNI_COMMAND === 'VERSION') {
        // Spec: VERSION needs only cniVersion; an unsupported one is answered with ours.
        return { exitCode: 0, stdout: JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS }) };
      }
      const env = validateEnv(raw.env);
      const config = validateConfig(raw.config);
      if (raw.mode !== undefined && raw.mode !== 'plugin' && raw.mode !== 'ipam')
        throw new CniError(CniErrorCode.DecodeFailure, `unknown request mode ${JSON.stringify(raw.mode)}`);
      // Answer before the plugin gives up: its deadline less a margin for the way back.
      const planned =
        typeof raw.timeoutMs === 'number' && Number.isFinite(raw.timeoutMs) && raw.timeoutMs > 0
          ? Math.max(100, raw.timeoutMs - 500)
          : Infinity;
      const ms = Math.min(this.d.requestDeadlineMs ?? REQUEST_DEADLINE_MS, planned);
      const answer = await this.withDeadline(env, ms, () =>
        this.dispatch(env, config, raw.mode === 'ipam', timing),
      );
      this.d.log.debug(
        { cmd: env.CNI_COMMAND, mode: raw.mode, containerID, ms: Date.now() - started },
        'CNI request done',
      );
      return answer;
    } catch (err: unknown) {
      let e = toCniError(err, `${rawEnv?.CNI_COMMAND ?? 'request'} failed`);
      // Every message names the container it is about, so a runtime's log line stands alone.
      if (containerID && !e.message.includes(containerID) && /^[\w.-]{1,256}$/.test(containerID))
        e = new CniError(e.code, `container ${containerID}: ${e.message}`, e.details);
      this.d.log.warn(
        { cmd: rawEnv?.CNI_COMMAND, containerID, code: e.code, msg: e.message },
        'CNI request failed',
      );
      return failed(e, cniVersion);
    }
  }

  /** Requests running now (a draining shutdown waits for them). */
  get inFlight(): number {
    return this.running;
  }

  private running = 0;
  private readonly attachments = new KeyedMutex();

  /**
   * Answers code 11 when the request outlives its deadline. An ADD that finishes after that is
   * rolled back (its runtime was told it failed and will not DEL what it never saw).
   */
  private async withDeadline(env: CniEnv, ms: number, fn: () => Promise<WireAnswer>): Promise<WireAnswer> {
    let timer: NodeJS.Timeout | undefined;
    let late = false;
    this.running++;
    const work = fn().finally(() => this.running--);
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        reject(new CniError(CniErrorCode.TryAgainLater, `${env.CNI_COMMAND} did not finish within ${ms} ms`));
      }, ms);
    });
    work
      .then(async (a) => {
        if (late && a.exitCode === 0 && env.CNI_COMMAND === 'ADD') {
          this.d.log.warn(
            { containerID: env.CNI_CONTAINERID },
            'ADD finished after its deadline: rolling back',
          );
          await this.del(env).catch((e: unknown) => this.d.log.error({ err: String(e) }, 'rollback failed'));
        }
      })
      .catch(() => undefined);
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async dispatch(
    env: CniEnv,
    config: NetConf,
    ipamMode: boolean,
    timing?: RequestTiming,
  ): Promise<WireAnswer> {
    const key = `${env.CNI_CONTAINERID ?? ''}\u0000${env.CNI_IFNAME ?? ''}`;
    switch (env.CNI_COMMAND) {
      case 'ADD':
        // One verb at a time per attachment: a concurrent DEL or second ADD waits its turn.
        return ok(
          await this.attachments.run(key, () =>
            ipamMode ? this.ipamAdd(env, config) : this.add(env, config, timing),
          ),
        );
      case 'DEL':
        await this.attachments.run(key, () => (ipamMode ? this.ipamDel(env) : this.del(env)));
        return ok();
      case 'CHECK':
        await (ipamMode ? this.ipamCheck(env, config) : this.check(env, config));
        return ok();
      case 'STATUS':
        this.status();
        await this.delegateStatus();
        return ok();
      case 'GC':
        await this.gc(config, ipamMode);
        return ok();
      default:
        throw new CniError(
          CniErrorCode.InvalidEnvironment,
          `CNI_COMMAND ${env.CNI_COMMAND} is not served here`,
        );
    }
  }

  private identity(env: CniEnv): PodIdentity {
    const args = parseCniArgs(env.CNI_ARGS);
    const id: PodIdentity = {
      namespace: args.K8S_POD_NAMESPACE ?? '',
      pod: args.K8S_POD_NAME ?? '',
    };
    if (args.K8S_POD_UID) id.uid = args.K8S_POD_UID;
    return id;
  }

  /** Static addresses: the pod annotation, then runtimeConfig.ips (the `ips` capability). */
  private async staticIPs(id: PodIdentity, config: NetConf, annotation: boolean): Promise<string[]> {
    const out: string[] = [];
    if (annotation && id.namespace && id.pod) {
      const pod = await this.d.pods.get(id.namespace, id.pod);
      const raw = pod?.annotations[STATIC_IP_ANNOTATION];
      if (raw) {
        for (const part of raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)) {
          if (!isIP(part)) {
            throw new CniError(
              CniErrorCode.InvalidConfig,
              `pod ${id.namespace}/${id.pod} annotation ${STATIC_IP_ANNOTATION}=${JSON.stringify(raw)}: ${JSON.stringify(part)} is not an IP address`,
            );
          }
          out.push(part);
        }
      }
    }
    // Requested addresses come as the "ips" capability or, from a NAD that declares none, as
    // args.cni.ips (NPWG 4.1.2.1.3.2); both carry the same list when both are there.
    const cniArgs = config.args?.cni as { ips?: unknown } | undefined;
    const requested = config.runtimeConfig?.ips ?? (Array.isArray(cniArgs?.ips) ? cniArgs.ips : []);
    for (const ip of requested) {
      if (typeof ip !== 'string' || !isIP(ip.split('/')[0]!)) {
        throw new CniError(
          CniErrorCode.InvalidConfig,
          `args.cni.ips: ${JSON.stringify(ip)} is not an IP address`,
        );
      }
      out.push(ip.split('/')[0]!);
    }
    return out;
  }

  private requireNetns(env: CniEnv): string {
    const netns = env.CNI_NETNS!;
    const kind = netnsKind(netns);
    if (kind === 'missing') {
      throw new CniError(
        CniErrorCode.UnknownContainer,
        `network namespace ${netns} of container ${env.CNI_CONTAINERID} does not exist`,
      );
    }
    if (kind === 'not-a-namespace') {
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        `CNI_NETNS: ${netns} of container ${env.CNI_CONTAINERID} is not a network namespace`,
      );
    }
    return netns;
  }

  private hostVeth(env: CniEnv): string {
    return hostVethName(this.d.devicePrefix, env.CNI_CONTAINERID!, env.CNI_IFNAME!);
  }

  // ---- ADD ---------------------------------------------------------------------------------

  async add(env: CniEnv, config: NetConf, timing?: RequestTiming): Promise<CniResult> {
    const t0 = performance.now();
    const netns = this.requireNetns(env);
    const net = this.d.network;
    if (!net.clusterNetwork) {
      throw new CniError(
        CniErrorCode.TryAgainLater,
        `the trellis agent has not loaded its ClusterNetwork yet: ${net.state.message}`,
      );
    }
    const containerID = env.CNI_CONTAINERID!;
    const ifname = env.CNI_IFNAME!;
    const id = this.identity(env);
    const hostVeth = this.hostVeth(env);
    const mac = podMac(containerID, ifname);
    const mtu = config.mtu ?? net.state.mtu;
    // Spec: ADD for a (container, ifname) that is already attached must fail; the runtime DELs
    // before it adds again. Nothing is touched (the existing attachment stays whole).
    if (localInterfaces().has(hostVeth)) {
      throw new CniError(
        CniErrorCode.Internal,
        `container ${containerID} already has ${ifname} attached (node end ${hostVeth} exists); DEL it before adding it again`,
      );
    }
    // The link needs no address: create it while IPAM writes to the API server.
    const linking = (async () => {
      await createPodLink({ netns, ifname, hostVeth, mtu, mac });
      return performance.now();
    })();
    // Handled below; this keeps an early failure from counting as an unhandled rejection.
    linking.catch(() => undefined);
    let ips: AllocatedIP[];
    let t1: number;
    let t2: number;
    try {
      const staticIPs = await this.staticIPs(id, config, true);
      t1 = performance.now();
      ips = await this.d.ipam.allocate({
        namespace: id.namespace,
        pod: id.pod || containerID,
        ...(id.uid ? { podUID: id.uid } : {}),
        containerID,
        interface: ifname,
        ...(staticIPs.length ? { staticIPs } : {}),
      });
      t2 = performance.now();
    } catch (err: unknown) {
      await linking.catch(() => undefined);
      await deleteHostVeth(hostVeth).catch(() => undefined);
      throw err;
    }
    let linked = t2;
    let addressing = t2;
    try {
      linked = await linking;
      addressing = performance.now();
      const addresses: PodAddress[] = ips.map((a) => ({ ip: a.ip, family: a.family }));
      await addressPodLink({ netns, ifname, hostVeth, mtu, mac, addresses });
      if (id.pod)
        await this.d.policy?.podAdded(
          id.namespace,
          id.pod,
          addresses.map((a) => a.ip),
        );
    } catch (err: unknown) {
      // Leave nothing behind: the runtime may not call DEL for an ADD it saw fail (and if it
      // does, DEL is idempotent).
      await deleteHostVeth(hostVeth).catch(() => undefined);
      await this.d.ipam
        .release({ containerID, interface: ifname })
        .catch((e: unknown) =>
          this.d.log.error({ err: e, containerID }, 'could not release IPAM after a failed ADD; GC will'),
        );
      throw toCniError(err, `container ${containerID}: setting up ${ifname} in ${netns}`);
    }
    const addressed = performance.now();
    const result = convertResult(podResult(ips, hostVeth, ifname, mac, mtu, netns), config.cniVersion);
    const done = performance.now();
    // The ADD timeline (ms; make bench-cni prints its percentiles). The veth is created while
    // IPAM writes, so `veth` overlaps `ipam`; `vethWait` is the part IPAM did not hide.
    const ms = {
      ...(timing && { read: timing.received - timing.accepted, parse: timing.parsed - timing.received }),
      pod: t1 - t0,
      ipam: t2 - t1,
      veth: linked - t0,
      vethWait: addressing - t2,
      address: addressed - addressing,
      result: done - addressed,
      total: done - (timing?.accepted ?? t0),
    };
    this.d.log.info(
      { pod: `${id.namespace}/${id.pod}`, containerID, ifname, ips: ips.map((i) => i.ip), hostVeth, ms },
      'pod attached',
    );
    if (this.d.multinet) {
      try {
        await this.d.multinet.add(env, config, result);
      } catch (err: unknown) {
        // All or nothing: the extra networks undid themselves; undo eth0 too. The ADD's own
        // error is what the runtime must hear, not a clean-up hiccup.
        await this.del(env).catch((e: unknown) =>
          this.d.log.warn({ err: String(e), containerID }, 'clean-up after a failed ADD was incomplete'),
        );
        throw err;
      }
    }
    return result;
  }

  // ---- DEL ---------------------------------------------------------------------------------

  async del(env: CniEnv): Promise<void> {
    // The extra networks are detached one at a time among themselves (NPWG 7.3: their delegates
    // never run side by side); eth0's teardown is ours alone, touches nothing of theirs, and runs
    // beside them (a link deletion waits on the kernel for tens of ms). A failed extra network does
    // not keep eth0 from going; its error reaches the runtime afterwards.
    const [eth0, extra] = await Promise.allSettled([this.delPrimary(env), this.d.multinet?.del(env)]);
    if (eth0.status === 'rejected') throw eth0.reason;
    if (extra.status === 'rejected') throw extra.reason;
  }

  private async delPrimary(env: CniEnv): Promise<void> {
    const containerID = env.CNI_CONTAINERID!;
    const ifname = env.CNI_IFNAME!;
    // The node end may already be gone (netns deleted first, or a repeated DEL): not an error,
    // the kernel removed the pair and its host routes with it.
    const t0 = performance.now();
    await deleteHostVeth(this.hostVeth(env));
    const t1 = performance.now();
    try {
      const n = await this.d.ipam.release({ containerID, interface: ifname });
      const ms = { veth: t1 - t0, ipam: performance.now() - t1 };
      this.d.log.info({ containerID, ifname, released: n, ms }, 'pod detached');
    } catch (err: unknown) {
      // DEL must not wedge pod deletion on an API hiccup: orphan reconciliation and GC release
      // the address later (allocations record the pod, and the pod will be gone).
      this.d.log.warn(
        { err: String(err), containerID },
        'IPAM release failed on DEL; reconciliation will release it',
      );
    }
  }

  // ---- CHECK -------------------------------------------------------------------------------

  async check(env: CniEnv, config: NetConf): Promise<void> {
    const prev = config.prevResult;
    if (!prev)
      throw new CniError(CniErrorCode.InvalidConfig, 'CHECK needs prevResult in the network configuration');
    const netns = this.requireNetns(env);
    const ifname = env.CNI_IFNAME!;
    const containerID = env.CNI_CONTAINERID!;
    const held = await this.d.ipam.lookup({ containerID, interface: ifname });
    const podIfIndex = (prev.interfaces ?? []).findIndex((i) => i.name === ifname && i.sandbox);
    const expected = (prev.ips ?? [])
      .filter((ip) => ip.interface === undefined || ip.interface === podIfIndex)
      .map((ip) => ip.address.split('/')[0]!);
    for (const ip of expected) {
      if (!held.some((h) => h.ip === ip)) {
        throw new CniError(
          CniErrorCode.Internal,
          `CHECK: ${ip} of ${containerID}/${ifname} is not allocated to it in IPAM`,
        );
      }
    }
    const state = await readPodInterface(netns, ifname);
    if (!state.link)
      throw new CniError(CniErrorCode.Internal, `CHECK: interface ${ifname} is missing in ${netns}`);
    const prevMac = podIfIndex >= 0 ? prev.interfaces![podIfIndex]!.mac : undefined;
    if (prevMac && state.link.address?.toLowerCase() !== prevMac.toLowerCase()) {
      throw new CniError(
        CniErrorCode.Internal,
        `CHECK: ${ifname} has MAC ${state.link.address}, prevResult says ${prevMac}`,
      );
    }
    if (!state.link.flags.includes('UP'))
      throw new CniError(CniErrorCode.Internal, `CHECK: ${ifname} in ${netns} is down`);
    const have = new Set(state.link.addr_info.map((a) => a.local));
    for (const ip of expected) {
      if (!have.has(ip))
        throw new CniError(CniErrorCode.Internal, `CHECK: ${ifname} in ${netns} lacks address ${ip}`);
    }
    for (const r of prev.routes ?? []) {
      const isDefault = r.dst === '0.0.0.0/0' || r.dst === '::/0';
      const found = state.routes.some(
        (k) =>
          (isDefault ? k.dst === 'default' : k.dst === r.dst || `${k.dst}/32` === r.dst) &&
          (!r.gw || k.gateway === r.gw),
      );
      if (!found)
        throw new CniError(
          CniErrorCode.Internal,
          `CHECK: route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing in ${netns}`,
        );
    }
    const hostVeth = this.hostVeth(env);
    if (!localInterfaces().has(hostVeth))
      throw new CniError(CniErrorCode.Internal, `CHECK: node-side interface ${hostVeth} is missing`);
    await this.d.multinet?.check(env);
    const [hostRoutes] = await ipJsonBatch([`route show table all dev ${hostVeth}`]);
    const routed = new Set((hostRoutes as IpRoute[]).map((r) => r.dst));
    for (const ip of expected) {
      if (!routed.has(ip))
        throw new CniError(CniErrorCode.Internal, `CHECK: the node has no route to ${ip} via ${hostVeth}`);
    }
  }

  // ---- STATUS / GC -------------------------------------------------------------------------

  status(): void {
    const s = this.d.network.state;
    if (!s.ready)
      throw new CniError(CniErrorCode.PluginNotAvailable, `trellis is not ready on this node: ${s.message}`);
  }

  /** STATUS for extra networks in use here: a delegate that cannot run (binary, master) is reported. */
  private async delegateStatus(): Promise<void> {
    const problem = await this.d.multinet?.status();
    if (problem) throw new CniError(problem.code, problem.message);
  }

  async gc(config: NetConf, ipamMode: boolean): Promise<void> {
    const valid =
      config['cni.dev/valid-attachments'] ?? (config['cni.dev/attachments'] as CniAttachment[] | undefined);
    if (!Array.isArray(valid)) {
      throw new CniError(
        CniErrorCode.InvalidConfig,
        'GC needs "cni.dev/valid-attachments" (a list of {containerID, ifname})',
      );
    }
    if (ipamMode) {
      // An attachment network's GC (spec 1.1: sent to its IPAM by its delegate, or by Multinet
      // for delegates that do not): that network's addresses in its pool that are not valid.
      const released = await this.d.ipam.gc(
        valid.map((v) => ({ containerID: v.containerID, interface: v.ifname })),
        this.d.gcGraceMs,
        (pool) => pool === this.attachmentPool(config),
        config.name,
      );
      this.d.log.info({ network: config.name, valid: valid.length, released }, 'attachment network GC done');
      return;
    }
    if (this.d.networkName && config.name !== this.d.networkName) {
      // Another network's GC: its valid list covers only its own attachments, so releasing or
      // removing anything of ours because it is not listed would cut pods off their network.
      this.d.log.info(
        { network: config.name, valid: valid.length },
        'GC for another network: nothing of ours',
      );
      return;
    }
    // Only the pod network's pools: attachment pools belong to other networks' GC.
    await this.d.multinet?.gc(new Set(valid.map((v) => v.containerID)), (ipamConf) =>
      this.gc(ipamConf, true),
    );
    const released = await this.d.ipam.gc(
      valid.map((v) => ({ containerID: v.containerID, interface: v.ifname })),
      this.d.gcGraceMs,
      (pool) => !pool.startsWith('attachment:'),
    );
    const keep = new Set(valid.map((v) => hostVethName(this.d.devicePrefix, v.containerID, v.ifname)));
    let removed = 0;
    for (const name of localInterfaces()) {
      if (
        name.startsWith(this.d.devicePrefix) &&
        /^[0-9a-f]+$/.test(name.slice(this.d.devicePrefix.length)) &&
        name.length === 15 &&
        !keep.has(name)
      ) {
        if (await deleteHostVeth(name)) removed++;
      }
    }
    this.d.log.info({ valid: valid.length, released, vethsRemoved: removed }, 'GC done');
  }

  // ---- IPAM for attachments ----------------------------------------------------------------

  private attachmentPool(config: NetConf): string {
    const pool = config.ipam?.pool;
    if (!pool)
      throw new CniError(
        CniErrorCode.InvalidConfig,
        `network ${config.name}: "ipam" of type trellis needs "pool" (an attachment name)`,
      );
    return pool.startsWith('attachment:') ? pool : `attachment:${pool}`;
  }

  async ipamAdd(env: CniEnv, config: NetConf): Promise<CniResult> {
    const pool = this.attachmentPool(config);
    const id = this.identity(env);
    const staticIPs = await this.staticIPs(id, config, false);
    const ips = await this.d.ipam.allocate({
      namespace: id.namespace,
      pod: id.pod || env.CNI_CONTAINERID!,
      containerID: env.CNI_CONTAINERID!,
      interface: env.CNI_IFNAME!,
      pools: [pool],
      network: config.name,
      ...(staticIPs.length ? { staticIPs } : {}),
    });
    const result: CniResult = {
      cniVersion: config.cniVersion,
      ips: ips.map((a) => {
        const c: CniIPConfig = { address: `${a.ip}/${a.prefixLength}` };
        if (a.gateway) c.gateway = a.gateway;
        return c;
      }),
    };
    if (config.ipam?.routes) result.routes = config.ipam.routes;
    this.d.log.info(
      { pod: `${id.namespace}/${id.pod}`, pool, ips: ips.map((i) => i.ip) },
      'attachment address allocated',
    );
    return convertResult(result, config.cniVersion);
  }

  async ipamDel(env: CniEnv): Promise<void> {
    await this.d.ipam.release({ containerID: env.CNI_CONTAINERID!, interface: env.CNI_IFNAME! });
  }

  async ipamCheck(env: CniEnv, config: NetConf): Promise<void> {
    const held = await this.d.ipam.lookup({ containerID: env.CNI_CONTAINERID!, interface: env.CNI_IFNAME! });
    for (const ip of config.prevResult?.ips ?? []) {
      const addr = ip.address.split('/')[0]!;
      if (!held.some((h) => h.ip === addr))
        throw new CniError(
          CniErrorCode.Internal,
          `CHECK: ${addr} is not allocated to ${env.CNI_CONTAINERID}/${env.CNI_IFNAME}`,
        );
    }
  }
}

/** The ADD result: node-side veth (no sandbox), pod interface, its addresses and default routes. */
export function podResult(
  ips: AllocatedIP[],
  hostVeth: string,
  ifname: string,
  mac: string,
  mtu: number,
  netns: string,
): CniResult {
  const result: CniResult = {
    cniVersion: LATEST_VERSION,
    interfaces: [
      { name: hostVeth, mac: GATEWAY_MAC, mtu },
      { name: ifname, mac, mtu, sandbox: netns },
    ],
    ips: ips.map((a) => ({
      address: `${a.ip}/${a.family === 4 ? 32 : 128}`,
      gateway: a.family === 4 ? GATEWAY_V4 : GATEWAY_V6,
      interface: 1,
    })),
    routes: [],
  };
  if (ips.some((a) => a.family === 4)) result.routes!.push({ dst: '0.0.0.0/0', gw: GATEWAY_V4 });
  if (ips.some((a) => a.family === 6)) result.routes!.push({ dst: '::/0', gw: GATEWAY_V6 });
  return result;
}
