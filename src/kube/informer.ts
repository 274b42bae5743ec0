// The one watch cache (an informer, as client-go calls it): list, then watch from the list's
// resourceVersion with bookmarks; re-list on 410 Gone or an ERROR event, reporting what vanished in
// between as deletes; reconnect when the server ends a stream; one capped, jittered backoff for
// failures. Objects are kept after an optional transform (trim to the fields the program reads),
// with indexes (by namespace, node, label...) for lookups without scanning.
//
// resourceVersions are opaque strings: this module stores them and hands them back to the server,
// and only ever compares two for equality (an unchanged object on a re-list). Never parse them.
//
// What it must never do: deliver events out of order for one object, or drop a delete. A handler
// that throws is logged and does not stop the cache. See docs/watch-cache.md for the API.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/logger.ts';
import { backoffSeconds } from '../util/backoff.ts';
import type { KubeClient } from './client.ts';
import { isApiError } from './errors.ts';
import { objectKey, type KubeObject } from './object.ts';
import { apiVersionOf, type Resource } from './resource.ts';

/** Values an object is indexed under (none: not in this index). */
export type Indexer<S> = (obj: S) => string[];

export interface InformerOptions<S extends KubeObject = KubeObject> {
  kube: KubeClient;
  resource: Resource;
  /** Only this namespace. @default all namespaces */
  namespace?: string;
  /** Server-side label selector (query form, e.g. from src/selector's toString()). @default all */
  labelSelector?: string;
  /** Server-side field selector, e.g. `spec.nodeName=node-1` for an agent's own pods. @default all */
  fieldSelector?: string;
  /**
   * Trims each object to what the program reads before it is stored and handed to handlers (memory:
   * a Pod is ~10 KiB with managedFields, a few hundred bytes trimmed). Must keep apiVersion, kind
   * and metadata.name/namespace/resourceVersion. @default drops metadata.managedFields only
   */
  transform?: (obj: KubeObject) => S;
  /** Named indexes for byIndex(); more can be added with addIndexer() before start(). */
  indexers?: Record<string, Indexer<S>>;
  logger?: Logger;
  /** Resume watching from here instead of listing first; a 410 falls back to a list. @default list */
  resourceVersion?: string;
  /** Server-side lifetime of one watch connection. @default 240-360 s, randomised */
  watchTimeoutSeconds?: number;
  /** Backoff after failures: base * 2^n seconds, capped, with up to 20% jitter. @default 0.5, 30 */
  backoff?: { baseSeconds?: number; capSeconds?: number };
}

export interface InformerHandlers<S> {
  /** A new object (from a list or a watch). Handlers added after objects are known get them replayed. */
  add: (obj: S) => void;
  /** A changed object; `old` is the previously stored version. */
  update: (obj: S, old: S) => void;
  /** A deleted object (its last state), including objects that vanished while re-listing. */
  delete: (obj: S) => void;
  /** A list (the first or a re-list) has been delivered in full. */
  synced: () => void;
  /** A watch connection was opened (after each list, and after each server-closed stream). */
  watching: () => void;
}

export interface InformerStats {
  lists: number;
  watches: number;
  events: number;
  failures: number;
}

export interface Informer<S extends KubeObject = KubeObject> {
  readonly resource: Resource;
  /** Starts list+watch in the background. Idempotent. */
  start(): void;
  /** Resolves once the first list is delivered; rejects if stopped first. */
  readonly synced: Promise<void>;
  hasSynced(): boolean;
  /** The stored object by key (`namespace/name` or `name`; see objectKey/keyOf). */
  get(key: string): S | undefined;
  list(): S[];
  /** Objects whose indexer `name` returned `value`. Throws for an unknown index name. */
  byIndex(name: string, value: string): S[];
  addIndexer(name: string, fn: Indexer<S>): void;
  /** Subscribes; returns the unsubscribe function. */
  on<E extends keyof InformerHandlers<S>>(event: E, fn: InformerHandlers<S>[E]): () => void;
  /** The resourceVersion the cache is at (opaque; for resuming elsewhere). */
  lastResourceVersion(): string | undefined;
  stats(): InformerStats;
  /** Stops watching and resolves when the loop has ended. */
  stop(): Promise<void>;
}

/** Index helpers for the common cases. */
export const indexBy = {
  namespace: <S extends KubeObject>(o: S): string[] => (o.metadata.namespace ? [o.metadata.namespace] : []),
  nodeName: <S extends KubeObject>(o: S): string[] => {
    const n = (o.spec as { nodeName?: string } | undefined)?.nodeName;
    return n ? [n] : [];
  },
  label:
    (key: string) =>
    <S extends KubeObject>(o: S): string[] => {
      const v = o.metadata.labels?.[key];
      return v === undefined ? [] : [v];
    },
};

/** The default transform: everything but managedFields, which no program reads. */
export function withoutManagedFields<S extends KubeObject>(obj: KubeObject): S {
  if (!obj.metadata.managedFields) return obj as S;
  const metadata = { ...obj.metadata };
  delete metadata.managedFields;
  return { ...obj, metadata } as S;
}

export function createInformer<S extends KubeObject = KubeObject>(opts: InformerOptions<S>): Informer<S> {
  return new WatchCache<S>(opts);
}

class Relist extends Error {}

type Listeners<S> = { [E in keyof InformerHandlers<S>]: Set<InformerHandlers<S>[E]> };

class WatchCache<S extends KubeObject> implements Informer<S> {
  readonly resource: Resource;
  readonly synced: Promise<void>;
  private readonly opts: InformerOptions<S>;
  private readonly transform: (obj: KubeObject) => S;
  private readonly store = new Map<string, S>();
  private readonly indexers = new Map<string, Indexer<S>>();
  /** index name -> value -> keys */
  private readonly indices = new Map<string, Map<string, Set<string>>>();
  private readonly listeners: Listeners<S> = {
    add: new Set(),
    update: new Set(),
    delete: new Set(),
    synced: new Set(),
    watching: new Set(),
  };
  private readonly counters: InformerStats = { lists: 0, watches: 0, events: 0, failures: 0 };
  private readonly abort = new AbortController();
  private rv: string | undefined;
  private isSynced = false;
  private markSynced!: () => void;
  private failSynced!: (err: Error) => void;
  private loop: Promise<void> | undefined;

  constructor(opts: InformerOptions<S>) {
    this.opts = opts;
    this.resource = opts.resource;
    this.transform = opts.transform ?? withoutManagedFields;
    this.rv = opts.resourceVersion;
    for (const [name, fn] of Object.entries(opts.indexers ?? {})) this.addIndexer(name, fn);
    this.synced = new Promise<void>((resolve, reject) => {
      this.markSynced = resolve;
      this.failSynced = reject;
    });
    this.synced.catch(() => undefined); // a stop before sync is not an unhandled rejection
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => {
      this.opts.logger?.error({ err, resource: this.resource.plural }, 'watch cache stopped unexpectedly');
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (!this.isSynced)
      this.failSynced(new Error(`watch of ${this.resource.plural} stopped before it synced`));
    await this.loop;
  }

  hasSynced(): boolean {
    return this.isSynced;
  }

  get(key: string): S | undefined {
    return this.store.get(key);
  }

  list(): S[] {
    return [...this.store.values()];
  }

  byIndex(name: string, value: string): S[] {
    const index = this.indices.get(name);
    if (!index) throw new Error(`no index ${JSON.stringify(name)} on the ${this.resource.plural} cache`);
    return [...(index.get(value) ?? [])].map((k) => this.store.get(k)!);
  }

  addIndexer(name: string, fn: Indexer<S>): void {
    if (this.indexers.has(name)) throw new Error(`index ${JSON.stringify(name)} already exists`);
    this.indexers.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.indices.set(name, index);
    for (const [key, obj] of this.store) for (const v of fn(obj)) addTo(index, v, key);
  }

  on<E extends keyof InformerHandlers<S>>(event: E, fn: InformerHandlers<S>[E]): () => void {
    (this.listeners[event] as Set<InformerHandlers<S>[E]>).add(fn);
    if (event === 'add')
      for (const obj of this.store.values()) this.call('add', () => (fn as (o: S) => void)(obj));
    return () => void (this.listeners[event] as Set<InformerHandlers<S>[E]>).delete(fn);
  }

  lastResourceVersion(): string | undefined {
    return this.rv;
  }

  stats(): InformerStats {
    return { ...this.counters };
  }

  // ---- the loop ----------------------------------------------------------------------------

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    const log = this.opts.logger;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (this.rv === undefined) await this.relist();
        failures = 0;
        await this.watchOnce();
        // The server ended the stream (its timeout): watch again from where we are.
      } catch (err: unknown) {
        if (signal.aborted) return;
        if (err instanceof Relist || isApiError(err, 410)) {
          this.rv = undefined;
          continue;
        }
        failures += 1;
        this.counters.failures += 1;
        const b = this.opts.backoff ?? {};
        const delay =
          backoffSeconds(b.baseSeconds ?? 0.5, failures - 1, b.capSeconds ?? 30) * (1 + Math.random() * 0.2);
        if (isApiError(err, 429)) {
          // The API server's cache for a new resource is still filling (e.g. a CRD just established).
          log?.info(
            { resource: this.resource.plural, delaySeconds: delay },
            'API server busy for this resource; retrying',
          );
        } else {
          log?.warn({ err, resource: this.resource.plural, delaySeconds: delay }, 'watch failed; retrying');
        }
        try {
          await sleep(delay * 1000, undefined, { signal });
        } catch {
          return;
        }
      }
    }
  }

  /** Lists everything and reports the differences to what was stored. */
  private async relist(): Promise<void> {
    const { kube, resource, namespace, labelSelector, fieldSelector } = this.opts;
    const list = await kube.listAll<KubeObject>(resource, namespace, { labelSelector, fieldSelector });
    this.counters.lists += 1;
    const seen = new Set<string>();
    for (const item of list.items) {
      const obj = this.shape(item);
      const key = objectKey(obj);
      seen.add(key);
      const old = this.store.get(key);
      // Equality is the only comparison an opaque resourceVersion allows: unchanged means no event.
      if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) continue;
      this.put(key, obj, old);
    }
    for (const [key, old] of this.store) if (!seen.has(key)) this.remove(key, old);
    this.rv = list.metadata.resourceVersion;
    this.opts.logger?.debug({ resource: resource.plural, count: list.items.length }, 'listed');
    if (!this.isSynced) {
      this.isSynced = true;
      this.markSynced();
    }
    this.emit('synced');
  }

  private async watchOnce(): Promise<void> {
    const { kube, resource, namespace, labelSelector, fieldSelector } = this.opts;
    const stream = kube.watch<KubeObject>(resource, namespace, {
      labelSelector,
      fieldSelector,
      resourceVersion: this.rv,
      allowWatchBookmarks: true,
      timeoutSeconds: this.opts.watchTimeoutSeconds ?? 240 + Math.floor(Math.random() * 120),
      signal: this.abort.signal,
    });
    this.counters.watches += 1;
    this.emit('watching');
    for await (const ev of stream) {
      if (ev.type === 'BOOKMARK') {
        this.rv = ev.object.metadata.resourceVersion ?? this.rv;
        continue;
      }
      if (ev.type === 'ERROR') {
        const status = ev.object as unknown as { code?: number; message?: string };
        this.opts.logger?.info(
          { resource: resource.plural, code: status.code, message: status.message },
          'watch error event; re-listing',
        );
        throw new Relist();
      }
      this.counters.events += 1;
      const obj = this.shape(ev.object);
      const key = objectKey(obj);
      this.rv = ev.object.metadata.resourceVersion ?? this.rv;
      if (ev.type === 'DELETED') {
        const old = this.store.get(key);
        this.remove(key, obj, old);
      } else this.put(key, obj, this.store.get(key));
    }
  }

  // ---- store -------------------------------------------------------------------------------

  /** Lists and watches omit apiVersion/kind on items at times; handlers and events need them. */
  private shape(item: KubeObject): S {
    const full = {
      ...item,
      apiVersion: item.apiVersion ?? apiVersionOf(this.resource),
      kind: item.kind ?? this.resource.kind,
    };
    return this.transform(full);
  }

  private put(key: string, obj: S, old: S | undefined): void {
    if (old) this.unindex(key, old);
    this.store.set(key, obj);
    this.index(key, obj);
    if (old) this.emit('update', obj, old);
    else this.emit('add', obj);
  }

  private remove(key: string, last: S, stored: S | undefined = this.store.get(key)): void {
    if (stored) this.unindex(key, stored);
    const had = this.store.delete(key);
    if (had) this.emit('delete', last);
  }

  private index(key: string, obj: S): void {
    for (const [name, fn] of this.indexers) for (const v of fn(obj)) addTo(this.indices.get(name)!, v, key);
  }

  private unindex(key: string, obj: S): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      for (const v of fn(obj)) {
        const keys = index.get(v);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(v);
      }
    }
  }

  private emit(event: 'add' | 'delete', obj: S): void;
  private emit(event: 'update', obj: S, old: S): void;
  private emit(event: 'synced' | 'watching'): void;
  private emit(event: keyof InformerHandlers<S>, obj?: S, old?: S): void {
    for (const fn of this.listeners[event]) {
      this.call(event, () => (fn as (a?: S, b?: S) => void)(obj, old));
    }
  }

  private call(event: string, fn: () => void): void {
    try {
      fn();
    } catch (err: unknown) {
      this.opts.logger?.warn({ err, resource: this.resource.plural, event }, 'watch cache handler failed');
    }
  }
}

function addTo(index: Map<string, Set<string>>, value: string, key: string): void {
  let keys = index.get(value);
  if (!keys) {
    keys = new Set();
    index.set(value, keys);
  }
  keys.add(key);
}
