// The runner's on-disk memory of each attachment, as libcni keeps it under /var/lib/cni/results:
// one file per (network, container, interface) holding the exact config and runtime arguments ADD
// used and the result it got. DEL and CHECK read it back, so they do what ADD did even after the
// caller restarted or the network's definition (a NAD) was edited or deleted. Writes are atomic
// (temp file, fsync, rename): a crash leaves the old file or the new one, never half of either.
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

  constructor(dir: string) {
    this.dir = join(dir, 'results');
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
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const final = this.path(a);
    const tmp = `${final}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(file));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, final);
  }

  /** The cached attachment, or undefined when there is none (or it cannot be read). */
  async load(k: AttachmentKey): Promise<CachedAttachment | undefined> {
    let text: string;
    try {
      text = await readFile(this.path(k), 'utf8');
    } catch {
      return undefined;
    }
    return decode(text);
  }

  async remove(k: AttachmentKey): Promise<void> {
    await rm(this.path(k), { force: true });
  }

  /** Every cached attachment, optionally of one network (GC walks these). */
  async list(networkName?: string): Promise<CachedAttachment[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: CachedAttachment[] = [];
    for (const n of names) {
      if (n.includes('.tmp-')) continue;
      let text: string;
      try {
        text = await readFile(join(this.dir, n), 'utf8');
      } catch {
        continue; // removed meanwhile
      }
      const a = decode(text);
      if (a && (networkName === undefined || a.networkName === networkName)) out.push(a);
    }
    return out;
  }
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
    return a;
  } catch {
    return undefined; // not ours or damaged: DEL falls back to the caller's config
  }
}
