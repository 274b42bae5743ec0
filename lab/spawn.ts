// Starts the lab's long-running processes (operator, agents, kubelets, probe servers) detached from
// the CLI, with output appended to a log file and the pid recorded, so they outlive `lab up` and
// `lab down` can find them.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';
import { recordPid } from './state.ts';

export interface DetachedProcess {
  /** Record name under <state>/pids, e.g. agent-node1. */
  name: string;
  cmd: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
  /** A string of the final command line (after `ip netns exec` execs) that proves the pid is ours. */
  marker: string;
}

export function startDetached(stateDir: string, p: DetachedProcess): number {
  mkdirSync(dirname(p.logFile), { recursive: true });
  const out = openSync(p.logFile, 'a');
  try {
    const child = spawn(p.cmd[0], p.cmd.slice(1), {
      stdio: ['ignore', out, out],
      detached: true,
      env: p.env ?? process.env,
      cwd: p.cwd,
    });
    if (child.pid === undefined) throw new Error(`could not start ${p.name}: ${p.cmd.join(' ')}`);
    child.unref();
    recordPid(stateDir, p.name, child.pid, p.marker);
    return child.pid;
  } finally {
    closeSync(out);
  }
}
