// Network namespace helpers: what the runtime's CNI_NETNS path means, and named namespaces for
// tests and the lab (`ip netns add` keeps them under /run/netns).
import { existsSync, readFileSync } from 'node:fs';
import { run, runResult } from './exec.ts';

/** True when the path names a network namespace we can enter. */
export function netnsExists(path: string): boolean {
  return existsSync(path);
}

export function namedNetnsPath(name: string): string {
  return `/run/netns/${name}`;
}

export async function createNamedNetns(name: string): Promise<string> {
  await run('ip', ['netns', 'add', name]);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return namedNetnsPath(name);
}

/** Deletes a named namespace; no error when it is already gone. */
export async function deleteNamedNetns(name: string): Promise<void> {
  await runResult('ip', ['netns', 'del', name]);
}

/** Runs a command inside a namespace given by path. */
export function execInNetns(path: string, cmd: string, args: string[], input?: string): Promise<string> {
  return run('nsenter', [`--net=${path}`, '--', cmd, ...args], input);
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
