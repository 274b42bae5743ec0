// Where a benchmark's CPU went: user+system seconds of the lab's processes by role, each counted
// with its live descendants and the children it already reaped (a kubelet's plugin runs, an
// agent's `ip`/`nft` commands). Read from /proc/PID/stat at two instants and subtracted.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { livePid, recordedNames } from '../../lab/state.ts';

const TICKS = 100; // USER_HZ on Linux

interface Stat {
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks */
  ticks: number;
  /** utime + stime */
  own: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name may hold spaces and parentheses: fields start after the last ')'
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const own = Number(f[11]) + Number(f[12]);
    return { ppid: Number(f[1]), own, ticks: own + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

/** Role of a recorded lab process name (agent-node3 -> agent). */
function roleOf(name: string): string {
  return name.split('-')[0]!;
}

/** Busy ticks of the whole machine (every CPU, every process: other sessions' work too). */
export function machineBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy is all but idle and iowait
  return f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3]! - f[4]!;
}

/** The lab's roots (recorded pids and the control plane's) mapped to roles. */
function roots(stateDir: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of recordedNames(stateDir)) {
    const pid = livePid(stateDir, name);
    if (pid) out.set(pid, roleOf(name));
  }
  try {
    const [api, etcd] = JSON.parse(
      readFileSync(join(stateDir, 'controlplane', 'pids.json'), 'utf8'),
    ) as number[];
    if (api) out.set(api, 'kube-apiserver');
    if (etcd) out.set(etcd, 'etcd');
  } catch {
    // no control plane recorded
  }
  return out;
}

/** CPU ticks by role now (each root plus every live descendant). */
export function cpuByRole(stateDir: string): Map<string, number> {
  const stats = new Map<number, Stat>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = readStat(Number(d));
    if (s) stats.set(Number(d), s);
  }
  const rootRoles = roots(stateDir);
  const out = new Map<string, number>();
  for (const [pid, s] of stats) {
    // walk up to a root: a process counts for the first lab root among its ancestors
    let p: number | undefined = pid;
    let role: string | undefined;
    for (let hops = 0; p && p > 1 && hops < 64; hops++) {
      role = rootRoles.get(p);
      if (role) break;
      p = stats.get(p)?.ppid;
    }
    if (role) out.set(role, (out.get(role) ?? 0) + s.ticks);
    // the roots' own share (user + system of the process itself, not of its children)
    if (role && p === pid) out.set(`${role} itself`, (out.get(`${role} itself`) ?? 0) + s.own);
  }
  return out;
}

export const ticksToSeconds = (t: number): number => t / TICKS;

/** Seconds of CPU per role between two snapshots, largest first. */
export function cpuSpent(before: Map<string, number>, after: Map<string, number>): [string, number][] {
  return [...after]
    .map(([role, t]) => [role, (t - (before.get(role) ?? 0)) / TICKS] as [string, number])
    .filter(([, s]) => s > 0)
    .sort((a, b) => b[1] - a[1]);
}
