// The simulated kubelet of one lab node. It watches Pods bound to its node and does for each what a
// kubelet + container runtime do for the network: a netns per pod, the CNI chain called exactly as
// libcni calls it, podIP/podIPs and Ready written into the Pod status, a probe server started in the
// pod, and on deletion DEL, netns removal and the final grace-0 delete. It never touches another
// node's pods. It runs inside the node's netns so plugins see the node's network.
// Usage: node lab/kubelet.ts --state DIR --node NAME
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { KubeClient } from '../src/kube/client.ts';
import { ApiError } from '../src/kube/errors.ts';
import { createInformer } from '../src/kube/informer.ts';
import { Builtin, objectPath } from '../src/kube/resource.ts';
import { createLogger } from '../src/log/logger.ts';
import { syncAgent } from './agents.ts';
import { loadFirstConfList } from '../src/cni/runner-config.ts';
import { run, useSpawner } from '../src/dataplane/exec.ts';
import { IpBatchSession } from '../src/dataplane/ip-session.ts';
import { addNetworkList, delNetworkList, podIPs } from '../src/cni/runner.ts';
import {
  podNetnsName,
  portMappingsOf,
  readSandbox,
  readSandboxes,
  removeSandbox,
  runtimeConfFor,
  writeSandbox,
  type Pod,
  type SandboxRecord,
} from './pods.ts';
import { inNetns, netnsExists } from './sh.ts';
import { startDetached } from './spawn.ts';
import {
  NODE_BIN,
  REPO,
  findNode,
  killRecordedProcess,
  livePid,
  requireState,
  type LabNode,
  type LabState,
} from './state.ts';

const log = createLogger('lab-kubelet');

export class Kubelet {
  readonly state: LabState;
  readonly node: LabNode;
  readonly kube: KubeClient;
  readonly confDir: string;
  readonly binDir: string;
  private readonly queues = new Map<string, Promise<void>>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private readonly latest = new Map<string, Pod>();
  /** Netns add/del without a process each (namespace names are ours: podNetnsName). */
  private readonly ip = new IpBatchSession();

  constructor(state: LabState, node: LabNode, kube: KubeClient) {
    this.state = state;
    this.node = node;
    this.kube = kube;
    this.confDir = join(node.root, 'etc', 'cni', 'net.d');
    this.binDir = join(node.root, 'opt', 'cni', 'bin');
  }

  /** Like kubelet's NetworkReady: no pod is started before the node has a CNI config. */
  async waitNetworkReady(): Promise<void> {
    let said = false;
    while (!loadFirstConfList(this.confDir)) {
      if (!said)
        log.info(
          { node: this.node.name, confDir: this.confDir },
          'waiting for a CNI config (NetworkReady=false)',
        );
      said = true;
      await sleep(300);
    }
    log.info({ node: this.node.name, conflist: loadFirstConfList(this.confDir)?.file }, 'network ready');
  }

  /** Keeps the agent's configMap volumes current and rolls it when its DaemonSet template changes. */
  async syncAgentLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const r = await syncAgent(this.kube, this.state, this.node);
        if (r === 'rolled')
          log.info({ node: this.node.name }, 'agent DaemonSet template changed: agent restarted');
        if (r === 'stopped') log.info({ node: this.node.name }, 'agent DaemonSet deleted: agent stopped');
      } catch (err: unknown) {
        log.warn({ err: String(err) }, 'agent sync failed');
      }
      await sleep(5000, undefined, { signal }).catch(() => undefined);
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    if (!this.state.standIn) void this.syncAgentLoop(signal);
    await this.waitNetworkReady();
    // The node's pods from the one watch cache (src/kube/informer.ts): list, watch, re-list on 410.
    const pods = createInformer<Pod>({
      kube: this.kube,
      resource: Builtin.Pod,
      fieldSelector: `spec.nodeName=${this.node.name}`,
      logger: log.child({ node: this.node.name }),
    });
    pods.on('add', (pod) => this.enqueue(pod));
    pods.on('update', (pod) => this.enqueue(pod));
    pods.on('delete', (pod) => {
      this.latest.delete(pod.metadata.uid ?? '');
      const rec = readSandbox(this.state, this.node, pod.metadata.uid ?? '');
      if (rec) this.enqueueOrphan(rec);
    });
    pods.on('synced', () => {
      // sandboxes whose pod is gone (deleted while we were down, or while the watch was broken)
      const seen = new Set(pods.list().map((p) => p.metadata.uid ?? ''));
      for (const rec of readSandboxes(this.state, this.node)) if (!seen.has(rec.uid)) this.enqueueOrphan(rec);
    });
    pods.start();
    if (!signal.aborted) await new Promise((res) => signal.addEventListener('abort', res, { once: true }));
    await pods.stop();
    this.ip.close();
  }

  private serial(uid: string, fn: () => Promise<void>): void {
    const prev = this.queues.get(uid) ?? Promise.resolve();
    const next = prev.then(fn).catch((err: unknown) => {
      // e.g. the API server was briefly unreachable: try again rather than wait for the next re-list
      log.error({ uid, err: String(err) }, 'pod sync failed; retrying');
      if (this.latest.has(uid)) this.retryLater(uid, 3000);
    });
    this.queues.set(uid, next);
    void next.finally(() => {
      if (this.queues.get(uid) === next) this.queues.delete(uid);
    });
  }

  enqueue(pod: Pod): void {
    const uid = pod.metadata.uid ?? '';
    this.latest.set(uid, pod);
    this.serial(uid, () => this.sync(uid));
  }

  private enqueueOrphan(rec: SandboxRecord): void {
    this.serial(rec.uid, () => this.teardown(rec, undefined));
  }

  private retryLater(uid: string, ms = 2000): void {
    if (this.retries.has(uid)) return;
    this.retries.set(
      uid,
      setTimeout(() => {
        this.retries.delete(uid);
        const pod = this.latest.get(uid);
        if (pod) this.serial(uid, () => this.sync(uid));
      }, ms),
    );
  }

  private async sync(uid: string): Promise<void> {
    const pod = this.latest.get(uid);
    if (!pod) return;
    const rec = readSandbox(this.state, this.node, uid);
    if (pod.metadata.deletionTimestamp) {
      await this.teardown(rec, pod);
      return;
    }
    if (pod.spec?.hostNetwork) {
      // no sandbox network: the pod shares the node's, as with a real kubelet
      if (!pod.status?.podIP) await this.writeStatus(pod, [this.node.ip]);
      return;
    }
    if (rec?.result) {
      this.ensureProbe(rec);
      if (!pod.status?.podIP) await this.writeStatus(pod, podIPs(rec.result));
      return;
    }
    await this.setup(pod, rec);
  }

  private async setup(pod: Pod, existing: SandboxRecord | undefined): Promise<void> {
    const uid = pod.metadata.uid ?? '';
    const ref = { pod: `${pod.metadata.namespace}/${pod.metadata.name}`, uid };
    const conflist = loadFirstConfList(this.confDir);
    if (!conflist) {
      log.warn(ref, 'no CNI config on the node; waiting');
      this.retryLater(uid);
      return;
    }
    // a sandbox left half-made by a failed ADD or a crash is torn down first, as runtimes do
    if (existing) await this.teardownNetwork(existing, pod);
    const rec: SandboxRecord = {
      uid,
      namespace: pod.metadata.namespace ?? 'default',
      name: pod.metadata.name,
      netns: podNetnsName(this.state.prefix, uid),
      containerId: randomBytes(32).toString('hex'),
      conflist,
      portMappings: portMappingsOf(pod),
    };
    // async, so one node's pods are set up side by side as a runtime does. The netns comes from
    // this kubelet's long-lived `ip -batch` (no process start); its loopback needs one `ip` run
    // inside it (through the small spawner: each fork of this large Node process costs). nsenter,
    // not `ip -n`: that one also copies the mount namespace, whose ~1,000 netns mounts in a scale
    // run made it cost 3.2 ms against nsenter's 2.0.
    if (!netnsExists(rec.netns)) await this.ip.run([`netns add ${rec.netns}`]);
    await run('nsenter', [`--net=/run/netns/${rec.netns}`, '--', 'ip', 'link', 'set', 'lo', 'up']);
    writeSandbox(this.state, this.node, rec); // before ADD: a crash mid-ADD still gets its DEL
    const started = Date.now();
    try {
      rec.result = await addNetworkList({ binDirs: [this.binDir] }, conflist, runtimeConfFor(rec));
    } catch (err: unknown) {
      const message = err instanceof Error ? err.message : String(err);
      log.warn({ ...ref, err: message }, 'CNI ADD failed; will retry');
      await this.event(pod, 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${message}`);
      await delNetworkList({ binDirs: [this.binDir] }, conflist, runtimeConfFor(rec)).catch(() => undefined);
      this.retryLater(uid, 3000);
      return;
    }
    writeSandbox(this.state, this.node, rec);
    const ips = podIPs(rec.result);
    log.info({ ...ref, ips, netns: rec.netns, ms: Date.now() - started }, 'pod network up');
    this.ensureProbe(rec);
    await this.writeStatus(pod, ips);
  }

  private probeName(uid: string): string {
    return `probe-${uid}`;
  }

  private ensureProbe(rec: SandboxRecord): void {
    // make bench-scale starts 1,000 pods: a Node probe server each would not fit the machine.
    if (process.env.TRELLIS_LAB_PROBES === '0') return;
    if (livePid(this.state.stateDir, this.probeName(rec.uid))) return;
    const script = join(REPO, 'lab', 'probe.ts');
    startDetached(this.state.stateDir, {
      name: this.probeName(rec.uid),
      cmd: inNetns(rec.netns, [NODE_BIN, script, '--name', `${rec.namespace}/${rec.name}`]),
      logFile: join(this.state.stateDir, 'nodes', this.node.name, 'probes.log'),
      marker: script,
    });
  }

  private async writeStatus(pod: Pod, ips: string[]): Promise<void> {
    const now = new Date().toISOString();
    const cond = (type: string) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: now });
    const status = {
      phase: 'Running',
      hostIP: this.node.ip,
      hostIPs: [{ ip: this.node.ip }],
      podIP: ips[0],
      podIPs: ips.map((ip) => ({ ip })),
      startTime: now,
      conditions: [
        'PodReadyToStartContainers',
        'Initialized',
        'ContainersReady',
        'Ready',
        'PodScheduled',
      ].map(cond),
      // The probe server stands in for every container; kubectl's READY column counts these.
      containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        image: c.image,
        imageID: '',
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: now } },
      })),
    };
    try {
      await this.kube.mergePatch(
        Builtin.Pod,
        pod.metadata.name,
        { status },
        pod.metadata.namespace,
        'status',
      );
    } catch (err: unknown) {
      if (err instanceof ApiError && err.code === 404) return;
      throw err;
    }
  }

  /** DEL through the chain and remove the netns; true when the network is gone. */
  private async teardownNetwork(rec: SandboxRecord, pod: Pod | undefined): Promise<boolean> {
    killRecordedProcess(this.state.stateDir, this.probeName(rec.uid));
    const conflist = rec.conflist ?? loadFirstConfList(this.confDir);
    if (conflist) {
      try {
        await delNetworkList({ binDirs: [this.binDir] }, conflist, runtimeConfFor(rec), rec.result);
      } catch (err: unknown) {
        log.warn({ pod: `${rec.namespace}/${rec.name}`, err: String(err) }, 'CNI DEL failed; will retry');
        if (pod)
          await this.event(
            pod,
            'FailedKillPod',
            `CNI DEL failed: ${err instanceof Error ? err.message : String(err)}`,
          );
        return false;
      }
    }
    if (netnsExists(rec.netns)) await this.ip.run([`netns del ${rec.netns}`]).catch(() => undefined);
    removeSandbox(this.state, this.node, rec.uid);
    log.info({ pod: `${rec.namespace}/${rec.name}`, netns: rec.netns }, 'pod network removed');
    return true;
  }

  private async teardown(rec: SandboxRecord | undefined, pod: Pod | undefined): Promise<void> {
    if (rec && !(await this.teardownNetwork(rec, pod))) {
      if (pod) this.retryLater(rec.uid, 3000);
      else setTimeout(() => this.enqueueOrphan(rec), 3000);
      return;
    }
    if (!pod) return;
    // the final delete a kubelet makes once the containers are gone; the uid precondition keeps a
    // re-created pod of the same name safe
    try {
      await this.kube.request('DELETE', objectPath(Builtin.Pod, pod.metadata.name, pod.metadata.namespace), {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid: pod.metadata.uid },
      });
    } catch (err: unknown) {
      if (!(err instanceof ApiError && (err.code === 404 || err.code === 409))) throw err;
    }
    this.latest.delete(pod.metadata.uid ?? '');
    this.lastEvent.delete(pod.metadata.uid ?? '');
  }

  private readonly lastEvent = new Map<string, { key: string; at: number }>();

  private async event(pod: Pod, reason: string, message: string): Promise<void> {
    // the same failure on every retry would flood the namespace: repeat it at most once a minute
    const uid = pod.metadata.uid ?? '';
    const key = `${reason}\n${message}`;
    const last = this.lastEvent.get(uid);
    if (last && last.key === key && Date.now() - last.at < 60_000) return;
    this.lastEvent.set(uid, { key, at: Date.now() });
    const now = new Date().toISOString();
    await this.kube
      .create(Builtin.Event, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: {
          name: `${pod.metadata.name}.${Date.now().toString(16)}`,
          namespace: pod.metadata.namespace,
        },
        involvedObject: {
          kind: 'Pod',
          apiVersion: 'v1',
          name: pod.metadata.name,
          namespace: pod.metadata.namespace,
          uid: pod.metadata.uid,
        },
        reason,
        message: message.slice(0, 1000),
        type: 'Warning',
        source: { component: 'kubelet', host: this.node.name },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      })
      .catch((err: unknown) => log.warn({ err: String(err) }, 'could not record event'));
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { state: { type: 'string' }, node: { type: 'string' } } });
  if (!values.state || !values.node) {
    process.stderr.write('usage: node lab/kubelet.ts --state DIR --node NAME\n');
    process.exit(2);
  }
  const state = requireState(values.state);
  const node = findNode(state, values.node);
  const kube = await KubeClient.fromKubeconfig(state.kubeconfig);
  const ac = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => ac.abort());
  log.info({ node: node.name }, 'lab kubelet starting');
  // plugin runs and `ip` start from a small spawner process, not by forking this one
  const stopSpawner = useSpawner();
  await new Kubelet(state, node, kube).run(ac.signal);
  stopSpawner();
  await kube.close();
}
