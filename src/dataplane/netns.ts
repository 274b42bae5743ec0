// Network namespace helpers: what the runtime's CNI_NETNS path means, and the interfaces of our own.
import { existsSync, readFileSync } from 'node:fs';

/** True when the path names a network namespace we can enter. */
export function netnsExists(path: string): boolean {
  return existsSync(path);
}

/** Interface names in the caller's own network namespace, read without spawning a process. */
export function localInterfaces(): Set<string> {
  const text = readFileSync('/proc/self/net/dev', 'utf8');
  const names = new Set<string>();
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon > 0) names.add(line.slice(0, colon).trim());
  }
  return names;
}
