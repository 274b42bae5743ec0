// Installs the plugin executable and the conflist into the node's CNI folders atomically (write a
// temporary file in the same folder, then rename) so a runtime never reads half a file. The
// conflist outlives the agent: a restart or an upgrade (old pod stopped before the new one starts)
// must never leave the node without CNI config. It is removed only on a real uninstall, which the
// API says and a pid file cannot: the ClusterNetwork is gone or marked for deletion (docs/datapath.md).
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { ClusterNetworkResource } from '../src/api/group.ts';
import type { Informer } from '../src/kube/informer.ts';
import type { KubeObject } from '../src/kube/object.ts';
import type { Logger } from '../src/log/logger.ts';

export const PLUGIN_NAME = 'trellis';

function atomicWrite(path: string, write: (tmp: string) => void, mode: number): void {
  const tmp = join(path, '..', `.${basename(path)}.tmp-${process.pid}`);
  write(tmp);
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Copies the plugin executable into the bin folder as `trellis` unless an identical copy is there. */
export function installPlugin(source: string, binDir: string, log: Logger): string {
  if (!existsSync(source))
    throw new Error(`TRELLIS_CNI_BINARY ${source} does not exist; build it with hack/build-cni.sh`);
  mkdirSync(binDir, { recursive: true });
  const dest = join(binDir, PLUGIN_NAME);
  const src = statSync(source);
  if (existsSync(dest)) {
    const cur = statSync(dest);
    if (cur.size === src.size && cur.mtimeMs >= src.mtimeMs) return dest;
  }
  atomicWrite(dest, (tmp) => copyFileSync(source, tmp), 0o755);
  log.info({ dest }, 'installed CNI plugin');
  return dest;
}

/** Name of the conflist in the conf folder: the source's own name when it is a conflist. */
export function conflistName(source: string): string {
  const b = basename(source);
  return b.endsWith('.conflist') ? b : '10-trellis.conflist';
}

/** Rewrites the first plugin's socket to ours; throws a clear error when the file is not a conflist. */
export function renderConflist(text: string, source: string, socketPath: string): string {
  let conf: { plugins?: Record<string, unknown>[] };
  try {
    conf = JSON.parse(text) as typeof conf;
  } catch (err: unknown) {
    throw new Error(`TRELLIS_CNI_CONFIG ${source} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const first = conf.plugins?.[0];
  if (!first || first.type !== PLUGIN_NAME) {
    throw new Error(
      `TRELLIS_CNI_CONFIG ${source} must be a conflist whose first plugin has "type": "${PLUGIN_NAME}"`,
    );
  }
  first.socket = socketPath;
  return JSON.stringify(conf, null, 2) + '\n';
}

export function installConflist(source: string, confDir: string, socketPath: string, log: Logger): string {
  const text = renderConflist(readFileSync(source, 'utf8'), source, socketPath);
  mkdirSync(confDir, { recursive: true });
  const dest = join(confDir, conflistName(source));
  if (existsSync(dest) && readFileSync(dest, 'utf8') === text) return dest;
  atomicWrite(dest, (tmp) => writeFileSync(tmp, text), 0o644);
  log.info({ dest }, 'installed CNI conflist');
  return dest;
}

/** What the agent needs of the API to decide on uninstall (KubeClient has it). */
export interface ClusterNetworkReader {
  getOrUndefined(r: typeof ClusterNetworkResource, name: string): Promise<KubeObject | undefined>;
}

/**
 * Watches the agent's own ClusterNetwork for the start of an uninstall (deletionTimestamp set, or the
 * object deleted) and remembers it. It is the signal that survives the uninstall itself: by the time
 * the agent gets SIGTERM, the operator's cleanup may already have deleted the agent's
 * ServiceAccount, so a read at shutdown can fail with 401 even though the network is going away.
 */
export function watchUninstall<S extends KubeObject>(
  informer: Informer<S>,
  clusterNetwork: string,
  log: Logger,
): { seen: () => boolean; stop: () => Promise<void> } {
  let seen = false;
  const mark = (why: string): void => {
    if (!seen)
      log.info({ clusterNetwork }, `ClusterNetwork ${why}: the CNI conflist goes when this agent stops`);
    seen = true;
  };
  const check = (o: S): void => {
    if (o.metadata.deletionTimestamp) mark('is being deleted');
  };
  // The agent's own ClusterNetwork cache (agent/caches.ts): one watch serves this and the data plane.
  const subs = [
    informer.on('add', check),
    informer.on('update', check),
    informer.on('delete', () => mark('was deleted')),
  ];
  return { seen: () => seen, stop: async () => subs.forEach((u) => u()) };
}

/**
 * True only when the API positively says the ClusterNetwork this agent serves is being uninstalled:
 * it no longer exists, or it carries a deletionTimestamp (the operator's finalizer is cleaning up).
 * A slow or failing API is asked again until `budgetMs` (well inside the pod's 30 s grace period:
 * a loaded node answered one 2 s try too late and left the conflist of an uninstalled network);
 * lasting doubt answers false: keeping the conflist of a network that is going away costs a pod a
 * retried ADD, removing it during an upgrade fails every new pod.
 */
export async function uninstallRequested(
  kube: ClusterNetworkReader,
  clusterNetwork: string,
  log: Logger,
  budgetMs = 8000,
  attemptMs = 2000,
): Promise<boolean> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 1; ; attempt++) {
    const answer = await askOnce(kube, clusterNetwork, attemptMs);
    if (typeof answer === 'boolean') return answer;
    if (Date.now() + attemptMs > deadline) {
      log.warn(
        { clusterNetwork, attempts: attempt, why: answer.why },
        'cannot tell whether the ClusterNetwork is being uninstalled; keeping the CNI conflist',
      );
      return false;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function askOnce(
  kube: ClusterNetworkReader,
  clusterNetwork: string,
  timeoutMs: number,
): Promise<boolean | { why: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const cn = await Promise.race([kube.getOrUndefined(ClusterNetworkResource, clusterNetwork), timeout]);
    if (cn === 'timeout') return { why: `the API did not answer within ${timeoutMs} ms` };
    return cn === undefined || !!cn.metadata.deletionTimestamp;
  } catch (err: unknown) {
    return { why: String(err) };
  } finally {
    clearTimeout(timer);
  }
}

export function removeConflist(confDir: string, source: string, log: Logger): void {
  const dest = join(confDir, conflistName(source));
  rmSync(dest, { force: true });
  log.info({ dest }, 'removed CNI conflist (the ClusterNetwork is being uninstalled)');
}

/**
 * Uninstall for good (the agent's ClusterNetwork is gone or going): the plugin executable and
 * everything under the state folder (the folder itself may be a mount point and stays).
 */
export function removeNodeFiles(binDir: string, stateDir: string, log: Logger): void {
  rmSync(join(binDir, PLUGIN_NAME), { force: true });
  if (existsSync(stateDir)) {
    for (const f of readdirSync(stateDir)) rmSync(join(stateDir, f), { recursive: true, force: true });
  }
  log.info({ binDir, stateDir }, 'removed the CNI plugin and agent state (uninstalled)');
}
