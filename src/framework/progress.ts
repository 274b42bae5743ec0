// Per-handler progress, persisted on the object in one annotation so a restarted operator knows
// which handlers finished (never rerun), which are waiting (resume after delayedUntil) and how
// many retries each has used. Written in the cycle's one patch, purged when the cycle completes.
import type { KubeObject } from '../kube/object.ts';
import { PROGRESS_ANNOTATION } from './essence.ts';

export interface ProgressRecord {
  /** RFC 3339 time of the first attempt. */
  started: string;
  /** RFC 3339 time the handler finished (success or permanent failure). */
  stopped?: string;
  /** RFC 3339 time before which the handler must not be retried. */
  delayedUntil?: string;
  /** Attempts so far that did not succeed. */
  retries: number;
  success: boolean;
  failure: boolean;
  message?: string;
  /** Digest of what the handler saw when it succeeded; a different value means run it again. */
  digest?: string;
}

export type Progress = Record<string, ProgressRecord>;

export function readProgress(body: KubeObject): Progress {
  const raw = body.metadata.annotations?.[PROGRESS_ANNOTATION];
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Progress) : {};
  } catch {
    // A hand-mangled annotation must not wedge the object: start the cycle over.
    return {};
  }
}

/** Annotation value for the progress, or null (delete the annotation) when nothing is left. */
export function progressAnnotationValue(progress: Progress): string | null {
  const ids = Object.keys(progress).sort();
  if (!ids.length) return null;
  return JSON.stringify(Object.fromEntries(ids.map((id) => [id, progress[id]])));
}

export function isFinished(rec: ProgressRecord | undefined): boolean {
  return !!rec && (rec.success || rec.failure);
}

/** Whether a handler may run now: not finished and not delayed into the future. */
export function isReady(rec: ProgressRecord | undefined, now: Date): boolean {
  if (!rec) return true;
  if (isFinished(rec)) return false;
  return !rec.delayedUntil || Date.parse(rec.delayedUntil) <= now.getTime();
}

/** Milliseconds until the earliest delayed handler becomes ready, or undefined if none waits. */
export function nextDelayMs(progress: Progress, ids: string[], now: Date): number | undefined {
  let best: number | undefined;
  for (const id of ids) {
    const rec = progress[id];
    if (!rec || isFinished(rec) || !rec.delayedUntil) continue;
    const ms = Math.max(0, Date.parse(rec.delayedUntil) - now.getTime());
    best = best === undefined ? ms : Math.min(best, ms);
  }
  return best;
}
