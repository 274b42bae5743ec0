// Level-triggered change notification: the agent does not keep object caches, it only needs to
// know that something it depends on changed, then re-reads and reconciles everything. Each
// resource gets a list+watch loop that calls `changed()` on every event and re-lists after a
// watch ends or fails (410 Gone included).
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../src/kube/client.ts';
import type { KubeObject } from '../src/kube/object.ts';
import type { Resource } from '../src/kube/resource.ts';
import type { Logger } from '../src/log/logger.ts';

export interface WatchTarget {
  resource: Resource;
  fieldSelector?: string;
  /**
   * The part of an object the agent's programming depends on; events that leave it unchanged
   * (IPAM writing allocations, status heartbeats) do not trigger a reconcile.
   */
  relevant?: (obj: KubeObject) => string;
}

export function watchChanges(
  kube: KubeClient,
  target: WatchTarget,
  changed: () => void,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  return (async () => {
    let backoff = 500;
    while (!signal.aborted) {
      try {
        const list = await kube.listAll<KubeObject>(target.resource, undefined, {
          fieldSelector: target.fieldSelector,
        });
        const seen = new Map<string, string>();
        if (target.relevant) for (const o of list.items) seen.set(o.metadata.name, target.relevant(o));
        changed();
        for await (const ev of kube.watch<KubeObject>(target.resource, undefined, {
          resourceVersion: list.metadata.resourceVersion,
          fieldSelector: target.fieldSelector,
          allowWatchBookmarks: true,
          timeoutSeconds: 300,
          signal,
        })) {
          if (ev.type === 'ERROR') break;
          if (ev.type === 'BOOKMARK') continue;
          if (target.relevant) {
            const name = ev.object.metadata.name;
            if (ev.type === 'DELETED') {
              seen.delete(name);
            } else {
              const key = target.relevant(ev.object);
              if (seen.get(name) === key) continue;
              seen.set(name, key);
            }
          }
          changed();
        }
        backoff = 500;
      } catch (err: unknown) {
        if (signal.aborted) return;
        log.warn({ err: String(err), kind: target.resource.kind }, 'watch failed; retrying');
        await sleep(backoff, undefined, { signal }).catch(() => undefined);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  })();
}

/** Coalesces bursts of change notifications into one run of `fn` at a time. */
export function debounced(fn: () => Promise<void>, delayMs: number, log: Logger): () => void {
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  const fire = (): void => {
    timer = undefined;
    if (running) {
      again = true;
      return;
    }
    running = true;
    fn()
      .catch((err: unknown) => log.error({ err }, 'reconcile failed'))
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  };
  const schedule = (): void => {
    if (!timer) timer = setTimeout(fire, delayMs);
  };
  return schedule;
}
