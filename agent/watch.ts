// Level-triggered change notification: the agent only needs to know that something it programs
// from changed, then it reconciles everything from its caches. Events that leave the relevant part
// of an object unchanged (IPAM writing allocations, status heartbeats) trigger nothing.
import type { Informer } from '../src/kube/informer.ts';
import type { KubeObject } from '../src/kube/object.ts';
import type { Logger } from '../src/log/logger.ts';

/**
 * Calls `changed` on every add and delete, and on updates where `relevant` (the part of an object
 * the agent's programming depends on) differs. Also after every re-list. Returns unsubscribe.
 */
export function onRelevantChange<S extends KubeObject>(
  inf: Informer<S>,
  changed: () => void,
  relevant?: (obj: S) => string,
): () => void {
  const subs = [
    inf.on('add', changed),
    inf.on('delete', changed),
    inf.on('synced', changed),
    inf.on('update', (obj, old) => {
      if (!relevant || relevant(obj) !== relevant(old)) changed();
    }),
  ];
  return () => subs.forEach((u) => u());
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
