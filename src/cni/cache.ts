// The runner's on-disk memory of each attachment, as libcni keeps it under /var/lib/cni/results:
// one file per (network, container, interface) holding the exact config and runtime arguments ADD
// used and the result it got. DEL and CHECK read it back, so they do what ADD did even after the
// caller restarted or the network's definition (a NAD) was edited or deleted. Writes are atomic
// (temp file, fsync, rename): a crash leaves the old file or the new one, never half of either.
// The directory is the truth; a copy in memory, read from it on first use and updated by this
// process's own writes, answers lookups (one process owns a directory, as libcni's runtime does),
// so a DEL or a policy pass does not re-read every attachment on the node.
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { toConfList, type NetworkConfigList } from './runner-config.ts';
import type { CniResult } from './types.ts';

/** libcni's cache file format (kind cniCacheV1), so its tools can read ours and the reverse. */
export interface CacheFile {
  kind: 'cniCacheV1';
  containerId: string;
  /** The conflist bytes, base64. */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result?: CniResult;
}

export interface CachedAttachment {
  containerId: string;
  ifName: string;
  networkName: string;
  netns?: string;
  config: NetworkConfigList;
  cniArgs: [string, string][];
  capabilityArgs: Record<string, unknown>;
  result?: CniResult;
}

/** "namespace/name" of the pod an attachment belongs to, from the CNI_ARGS it was made with ("/" when none). */
export function attachmentPod(a: Pick<CachedAttachment, 'cniArgs'>): string {
  const args = Object.fromEntries(a.cniArgs);
  return `${args.K8S_POD_NAMESPACE ?? ''}/${args.K8S_POD_NAME ?? ''}`;
}

export interface AttachmentKey {
  networkName: string;
  containerId: string;
  ifName: string;
}

// Names come from runtimes and NADs: keep the file name to a safe alphabet so no value can climb
// out of the cache directory.
function safe(part: string): string {
  return part.replace(/[^A-Za-z0-9_.@-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function cacheFileName(k: AttachmentKey): string {
  return `${safe(k.networkName)}-${safe(k.containerId)}-${safe(k.ifName)}`;
}

export class ResultCache {
  readonly dir: string;
  /** File name -> attachment, loaded from the directory once; undefined until first read. */
  private mirror?: Promise<Map<string, CachedAttachment>>;

  constructor(dir: string) {
    this.dir = join(dir, 'results');
  }

  private loaded(): Promise<Map<string, CachedAttachment>> {
    this.mirror ??= this.readAll();
    return this.mirror;
  }

  private path(k: AttachmentKey): string {
    return join(this.dir, cacheFileName(k));
  }

  async save(a: CachedAttachment): Promise<void> {
    const file: CacheFile = {
      kind: 'cniCacheV1',
      containerId: a.containerId,
      config: Buffer.from(JSON.stringify(stripFile(a.config))).toString('base64'),
      ifName: a.ifName,
      networkName: a.networkName,
      cniArgs: a.cniArgs,
      capabilityArgs: a.capabilityArgs,
    };
    if (a.netns) file.netns = a.netns;
    if (a.result) file.result = a.result;
    const text = JSON.stringify(file);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const final = this.path(a);
    const tmp = `${final}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, final);
    // The mirror holds what a restart would read back from this file.
    const back = decode(text);
    if (this.mirror && back) (await this.mirror).set(cacheFileName(a), back);
  }

  /** The cached attachment, or undefined when there is none (or it cannot be read). */
  async load(k: AttachmentKey): Promise<CachedAttachment | undefined> {
    return (await this.loaded()).get(cacheFileName(k));
  }

  async remove(k: AttachmentKey): Promise<void> {
    await rm(this.path(k), { force: true });
    if (this.mirror) (await this.mirror).delete(cacheFileName(k));
  }

  /** Every cached attachment, optionally only of one network or one container (GC, DEL, policy). */
  async list(
    filter: { networkName?: string; containerId?: string } | string = {},
  ): Promise<CachedAttachment[]> {
    const f = typeof filter === 'string' ? { networkName: filter } : filter;
    const out: CachedAttachment[] = [];
    for (const a of (await this.loaded()).values()) {
      if (f.networkName !== undefined && a.networkName !== f.networkName) continue;
      if (f.containerId !== undefined && a.containerId !== f.containerId) continue;
      out.push(a);
    }
    return out;
  }

  private async readAll(): Promise<Map<string, CachedAttachment>> {
    const out = new Map<string, CachedAttachment>();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return out;
    }
    for (const n of names.sort()) {
      if (n.includes('.tmp-')) continue;
      let text: string;
      try {
        text = await readFile(join(this.dir, n), 'utf8');
      } catch {
        continue; // removed meanwhile
      }
      const a = decode(text);
      if (a) out.set(n, a);
    }
    return out;
  }
}

/** Entries are shared with callers, frozen so that no caller can change the mirror. */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

function stripFile(list: NetworkConfigList): Omit<NetworkConfigList, 'file'> {
  const copy: NetworkConfigList = { ...list };
  delete copy.file;
  return copy;
}

function decode(text: string): CachedAttachment | undefined {
  try {
    const f = JSON.parse(text) as CacheFile;
    if (f.kind !== 'cniCacheV1') return undefined;
    const config = toConfList(JSON.parse(Buffer.from(f.config, 'base64').toString('utf8')), 'cached config');
    const a: CachedAttachment = {
      containerId: f.containerId,
      ifName: f.ifName,
      networkName: f.networkName,
      config,
      cniArgs: f.cniArgs ?? [],
      capabilityArgs: f.capabilityArgs ?? {},
    };
    if (f.netns) a.netns = f.netns;
    if (f.result) a.result = f.result;
    return deepFreeze(a);
  } catch {
    return undefined; // not ours or damaged: DEL falls back to the caller's config
  }
}
