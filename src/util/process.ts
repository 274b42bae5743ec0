// Process probes shared by the control plane and the lab: whether a recorded pid still runs, and
// killing pids that may already be gone (a pid file outlives its processes after a crash).

/** True when the process id is alive (signal 0 probe). */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signals each pid; one already gone is skipped. */
export function killPids(pids: number[], signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
