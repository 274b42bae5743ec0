// List + watch for one resource, forever, until the signal aborts. Resumes a watch from the last
// resourceVersion seen (bookmarks included), re-lists on 410 Gone or an ERROR event, reconnects when
// the server ends the stream, and backs off on connection errors. A re-list reports objects that
// vanished while we were not watching as DELETED, so callers only ever see a consistent stream.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../kube/client.ts';
import { isApiError } from '../kube/errors.ts';
import type { KubeObject } from '../kube/object.ts';
import { apiVersionOf, type Resource } from '../kube/resource.ts';
import type { Logger } from '../log/logger.ts';
import { backoffSeconds } from '../util/backoff.ts';

export type ObservedType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchLoopOptions {
  namespace?: string;
  labelSelector?: string;
  signal: AbortSignal;
  logger: Logger;
  onEvent: (type: ObservedType, obj: KubeObject) => void;
  /** Called after each (re-)list has been delivered. */
  onSynced?: () => void;
  /** Called when a watch stream ended normally and is about to be re-opened from the last resourceVersion. */
  onReconnect?: () => void;
  /**
   * Resume watching from this resourceVersion instead of listing first (e.g. one saved by a previous
   * run). If the server no longer has it (410 Gone), the loop lists as usual. @default list first
   */
  resourceVersion?: string;
  /** Server-side lifetime of one watch connection. @default 240-360 s, randomised */
  watchTimeoutSeconds?: number;
}

export function objectKey(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

class Relist extends Error {}

export async function watchLoop(kube: KubeClient, r: Resource, opts: WatchLoopOptions): Promise<void> {
  const { signal, logger } = opts;
  const known = new Map<string, KubeObject>();
  let failures = 0;
  /** Lists everything, reports the differences to what we knew, and returns the list's resourceVersion. */
  const relist = async (): Promise<string> => {
    const list = await kube.listAll<KubeObject>(r, opts.namespace, { labelSelector: opts.labelSelector });
    const seen = new Set<string>();
    for (const item of list.items) {
      // Lists omit apiVersion/kind on items; handlers and events need them.
      const obj = { ...item, apiVersion: item.apiVersion ?? apiVersionOf(r), kind: item.kind ?? r.kind };
      const key = objectKey(obj);
      seen.add(key);
      opts.onEvent(known.has(key) ? 'MODIFIED' : 'ADDED', obj);
      known.set(key, obj);
    }
    for (const [key, obj] of known) {
      if (!seen.has(key)) {
        known.delete(key);
        opts.onEvent('DELETED', obj);
      }
    }
    opts.onSynced?.();
    logger.debug(
      { resource: r.plural, count: list.items.length, resourceVersion: list.metadata.resourceVersion },
      'listed',
    );
    failures = 0;
    return list.metadata.resourceVersion;
  };
  let resumeFrom = opts.resourceVersion;
  while (!signal.aborted) {
    try {
      let rv: string;
      if (resumeFrom) {
        rv = resumeFrom;
        resumeFrom = undefined;
      } else {
        rv = await relist();
      }
      while (!signal.aborted) {
        const stream = kube.watch<KubeObject>(r, opts.namespace, {
          labelSelector: opts.labelSelector,
          resourceVersion: rv,
          allowWatchBookmarks: true,
          timeoutSeconds: opts.watchTimeoutSeconds ?? 240 + Math.floor(Math.random() * 120),
          signal,
        });
        for await (const ev of stream) {
          if (ev.type === 'BOOKMARK') {
            rv = ev.object.metadata.resourceVersion ?? rv;
            continue;
          }
          if (ev.type === 'ERROR') {
            const status = ev.object as unknown as { code?: number; message?: string };
            logger.info(
              { resource: r.plural, code: status.code, message: status.message },
              'watch error event; re-listing',
            );
            throw new Relist();
          }
          const obj = ev.object;
          rv = obj.metadata.resourceVersion ?? rv;
          const key = objectKey(obj);
          if (ev.type === 'DELETED') known.delete(key);
          else known.set(key, obj);
          opts.onEvent(ev.type, obj);
        }
        // The server closed the stream (its timeout): watch again from where we were.
        opts.onReconnect?.();
      }
    } catch (err: unknown) {
      if (signal.aborted) return;
      if (err instanceof Relist || isApiError(err, 410)) continue;
      failures += 1;
      const delay = backoffSeconds(0.5, failures - 1, 30);
      if (isApiError(err, 429)) {
        // The API server's cache for a new resource is still filling (e.g. a CRD just established).
        logger.info(
          { resource: r.plural, delaySeconds: delay },
          'API server not ready for this resource yet; retrying',
        );
      } else {
        logger.warn({ err, resource: r.plural, delaySeconds: delay }, 'watch failed; retrying');
      }
      try {
        await sleep(delay * 1000, undefined, { signal });
      } catch {
        return;
      }
    }
  }
}
