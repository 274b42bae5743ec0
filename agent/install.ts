// Installs the plugin executable and the conflist into the node's CNI folders atomically (write a
// temporary file in the same folder, then rename) so a runtime never reads half a file, and keeps
// a pid file per running agent so only the last agent to stop removes the conflist: during a
// rolling update the new agent keeps the node's pod networking configured.
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

function agentsDir(stateDir: string): string {
  return join(stateDir, 'agents');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: unknown) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Records this agent as running on the node. */
export function registerAgent(stateDir: string): void {
  mkdirSync(agentsDir(stateDir), { recursive: true, mode: 0o700 });
  writeFileSync(join(agentsDir(stateDir), String(process.pid)), new Date().toISOString());
}

/** Unregisters this agent; true when no other live agent remains (stale pid files are ignored). */
export function unregisterAgent(stateDir: string): boolean {
  const dir = agentsDir(stateDir);
  rmSync(join(dir, String(process.pid)), { force: true });
  if (!existsSync(dir)) return true;
  const others = readdirSync(dir)
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid !== process.pid);
  let last = true;
  for (const pid of others) {
    if (alive(pid)) last = false;
    else rmSync(join(dir, String(pid)), { force: true });
  }
  return last;
}

export function removeConflist(confDir: string, source: string, log: Logger): void {
  const dest = join(confDir, conflistName(source));
  rmSync(dest, { force: true });
  log.info({ dest }, 'removed CNI conflist (last agent on this node)');
}
