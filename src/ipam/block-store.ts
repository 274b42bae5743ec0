// The node's view of IPBlock objects: a cache per pool (the API server is the truth; memory only
// saves reads) and the batched writer every change goes through. Each write is a PUT carrying the
// resourceVersion we read (409 -> re-read and re-apply) or a create of a deterministically named
// block (409 -> someone else owns it), so no cached copy can ever make two holders of one address.
// Writes to one block are serialised in-process and grouped (group commit), so the node never
// conflicts with itself. resourceVersions are opaque: freshness is judged by local write order.
import { setTimeout as sleep } from 'node:timers/promises';
import { IPBlockResource } from '../api/group.ts';
import { BLOCK_POOL_LABEL, type IPBlock } from '../api/ipam.ts';
import type { KubeClient } from '../kube/client.ts';
import { isApiError } from '../kube/errors.ts';
import { poolKey } from './block.ts';
import { IpamError } from './errors.ts';
import { ipamMetrics } from './metrics.ts';

/** Placeholder for a block known to exist (a create answered 409) but not read yet. */
export type CachedBlock = IPBlock | null;

/**
 * A change to one block: mutates the copy it is given and answers whether it changed anything and
 * what to return; it must throw (a refusal) before mutating, never after.
 */
export type BlockChange<T> = (block: IPBlock) => { changed: boolean; result: T };

interface PendingChange {
  change: BlockChange<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export const MAX_WRITE_ATTEMPTS = 30;

export class BlockStore {
  private readonly kube: KubeClient;
  /** pool name -> block name -> last object seen (a cache; the API is the truth). */
  private readonly blocks = new Map<string, Map<string, CachedBlock>>();
  private readonly loading = new Map<string, Promise<void>>();
  private readonly loaded = new Set<string>();
  /** Changes waiting for the next write of a block, and the blocks being written now. */
  private readonly queued = new Map<string, PendingChange[]>();
  private readonly writing = new Set<string>();
  /** Local write order: which cached copies came from our own writes after a list started. */
  private writeSeq = 0;
  private readonly writtenAt = new Map<string, number>();

  constructor(kube: KubeClient) {
    this.kube = kube;
  }

  /** The cached blocks of one pool, by name (null: exists, not read yet). */
  poolMap(pool: { name: string }): Map<string, CachedBlock> {
    let m = this.blocks.get(pool.name);
    if (!m) {
      m = new Map();
      this.blocks.set(pool.name, m);
    }
    return m;
  }

  /** Remembers a block the caller read or wrote itself. */
  remember(pool: { name: string }, block: IPBlock, written = false): void {
    this.poolMap(pool).set(block.metadata.name, block);
    if (written) this.writtenAt.set(block.metadata.name, ++this.writeSeq);
  }

  async ensureLoaded(pool: { name: string }): Promise<void> {
    if (this.loaded.has(pool.name)) return;
    let p = this.loading.get(pool.name);
    if (!p) {
      p = this.reload(pool)
        .then(() => void this.loaded.add(pool.name))
        .finally(() => this.loading.delete(pool.name));
      this.loading.set(pool.name, p);
    }
    await p;
  }

  /**
   * Re-lists the pool's blocks into the cache in place. A cached copy this store wrote while the
   * list was in flight is kept (the list may predate it); everything else takes the list's word.
   */
  async reload(pool: { name: string }): Promise<void> {
    const since = this.writeSeq;
    const list = await whenNotBusy(() =>
      this.kube.listAll<IPBlock>(IPBlockResource, undefined, {
        labelSelector: `${BLOCK_POOL_LABEL}=${poolKey(pool.name)}`,
      }),
    );
    const m = this.poolMap(pool);
    const writtenSince = (name: string): boolean => (this.writtenAt.get(name) ?? 0) > since;
    const listed = new Set<string>();
    for (const b of list.items) {
      if (b.spec?.pool !== pool.name) continue;
      listed.add(b.metadata.name);
      const cached = m.get(b.metadata.name);
      if (!cached || !writtenSince(b.metadata.name)) m.set(b.metadata.name, b);
    }
    for (const [name, cached] of m) {
      if (listed.has(name)) continue;
      if (!cached || !writtenSince(name)) m.delete(name);
    }
  }

  /** Reads blocks known only as placeholders, so scans see their allocations. */
  async materialize(pool: { name: string }): Promise<IPBlock[]> {
    const m = this.poolMap(pool);
    const missing = [...m].filter(([, b]) => b === null).map(([name]) => name);
    await Promise.all(
      missing.map(async (name) => {
        const b = await this.kube.getOrUndefined<IPBlock>(IPBlockResource, name);
        if (b) {
          if (m.get(name) === null) m.set(name, b);
        } else m.delete(name);
      }),
    );
    return [...m.values()].filter((b): b is IPBlock => b !== null);
  }

  /** Every block of every pool, straight from the API (DEL when the ClusterNetwork is gone). */
  async listEverything(): Promise<IPBlock[]> {
    return (await whenNotBusy(() => this.kube.listAll<IPBlock>(IPBlockResource))).items;
  }

  /**
   * Creates a block nobody holds yet (claim + first allocation = one write). Answers the saved
   * block, or undefined when it already exists (409: someone else claimed it; cached as unread).
   */
  async create(pool: { name: string }, block: IPBlock): Promise<IPBlock | undefined> {
    try {
      const saved = await whenNotBusy(() => this.kube.create<IPBlock>(IPBlockResource, block));
      this.remember(pool, saved, true);
      return saved;
    } catch (err: unknown) {
      if (!isApiError(err, 409)) throw err;
      this.poolMap(pool).set(block.metadata.name, null);
      return undefined;
    }
  }

  /**
   * Applies `change` to the block and writes it with the resourceVersion read; on 409 re-reads and
   * re-applies. Answers undefined when the block no longer exists.
   *
   * Changes queued while a write of the same block is in flight go out together in the next
   * write: a burst of ADDs on one node costs a few writes, not one each.
   */
  mutate<T>(pool: { name: string }, name: string, change: BlockChange<T>): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      const queue = this.queued.get(name) ?? [];
      queue.push({ change, resolve: resolve as (v: unknown) => void, reject });
      this.queued.set(name, queue);
      if (!this.writing.has(name)) void this.drain(pool, name);
    });
  }

  private async drain(pool: { name: string }, name: string): Promise<void> {
    this.writing.add(name);
    try {
      for (let batch = this.queued.get(name); batch && batch.length > 0; batch = this.queued.get(name)) {
        this.queued.delete(name);
        await this.writeBatch(pool, name, batch);
      }
    } finally {
      this.writing.delete(name);
    }
  }

  /** One write carrying every queued change; settles each change's promise, never throws. */
  private async writeBatch(pool: { name: string }, name: string, batch: PendingChange[]): Promise<void> {
    const m = this.poolMap(pool);
    let pending = batch;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS && pending.length > 0; attempt++) {
      let current = m.get(name) ?? null;
      const fresh = !current;
      if (!current) {
        try {
          current =
            (await whenNotBusy(() => this.kube.getOrUndefined<IPBlock>(IPBlockResource, name))) ?? null;
        } catch (err: unknown) {
          for (const p of pending) p.reject(err);
          return;
        }
        if (!current) {
          m.delete(name);
          for (const p of pending) p.resolve(undefined);
          return;
        }
        m.set(name, current);
      }
      const copy = structuredClone(current);
      copy.spec!.allocations ??= {};
      const applied: { p: PendingChange; result: unknown }[] = [];
      let changed = false;
      let stale = false;
      for (const p of pending) {
        try {
          const out = p.change(copy);
          applied.push({ p, result: out.result });
          changed ||= out.changed;
        } catch (err: unknown) {
          // A refusal (e.g. a static IP held by someone) is only final on a fresh read.
          if (fresh) p.reject(err);
          else stale = true;
        }
      }
      if (stale) {
        m.set(name, null);
        continue; // re-read and re-apply everything not refused on a fresh read
      }
      pending = applied.map((a) => a.p);
      if (!changed) {
        for (const a of applied) a.p.resolve(a.result);
        return;
      }
      copy.spec!.used = Object.keys(copy.spec!.allocations).length;
      try {
        const saved = await whenNotBusy(() => this.kube.replace<IPBlock>(IPBlockResource, copy));
        this.remember(pool, saved, true);
        for (const a of applied) a.p.resolve(a.result);
        return;
      } catch (err: unknown) {
        if (isApiError(err, 409)) {
          ipamMetrics.conflicts.inc();
          m.set(name, null);
          continue;
        }
        if (isApiError(err, 404)) {
          m.delete(name);
          for (const a of applied) a.p.resolve(undefined);
          return;
        }
        // The write may or may not have landed: forget the cached copy so the next read is fresh.
        m.set(name, null);
        for (const a of applied) a.p.reject(err);
        return;
      }
    }
    const err = new IpamError(
      `gave up writing IPBlock ${name} after ${MAX_WRITE_ATTEMPTS} conflicting updates; try again`,
      11,
    );
    for (const p of pending) p.reject(err);
  }
}

/**
 * Retries a request the API server refused with 429 (e.g. "storage is (re)initializing" right
 * after a CRD update, or priority-and-fairness throttling); a 429 was not applied, so it is safe.
 */
export async function whenNotBusy<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err: unknown) {
      if (!isApiError(err, 429) || attempt >= 20) throw err;
      await sleep(Math.min(1000, 50 * 2 ** attempt));
    }
  }
}
