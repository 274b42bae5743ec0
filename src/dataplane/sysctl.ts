// Kernel parameters of the caller's own network namespace (/proc/sys/net is per namespace).
// Keys are path segments so interface names with dots (trl.vxlan) are not misread.
import { readFileSync, writeFileSync } from 'node:fs';

function path(segments: string[]): string {
  return `/proc/sys/${segments.join('/')}`;
}

export function readSysctl(segments: string[]): string | undefined {
  try {
    return readFileSync(path(segments), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Writes a value when it differs; returns true when it changed something. */
export function writeSysctl(segments: string[], value: string): boolean {
  if (readSysctl(segments) === value) return false;
  writeFileSync(path(segments), value);
  return true;
}
