// Network namespace helpers: what the runtime's CNI_NETNS path means, and the interfaces of our own.
import { readFileSync, readlinkSync, statSync } from 'node:fs';

/**
 * What a CNI_NETNS path names: a namespace (a file of the nsfs pseudo-filesystem, like
 * /proc/self/ns/net, whether /proc/PID/ns/net or a bind mount under /run/netns), nothing, or
 * something else (an ordinary file or folder, refused before any IPAM work).
 */
export function netnsKind(path: string): 'namespace' | 'missing' | 'not-a-namespace' {
  let st;
  try {
    st = statSync(path);
  } catch (err: unknown) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : 'not-a-namespace';
  }
  // /proc/PID/ns/<type> links say their type: only a net one will do (nsenter --net needs it).
  try {
    if (!readlinkSync(path).startsWith('net:[')) return 'not-a-namespace';
  } catch {
    // Not a symlink: a bind mount (ip netns add, runtimes' /var/run/netns/cni-...).
  }
  const own = statSync('/proc/self/ns/net');
  return st.dev === own.dev && !st.isDirectory() ? 'namespace' : 'not-a-namespace';
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
