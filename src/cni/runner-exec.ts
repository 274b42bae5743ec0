// Executes one plugin binary as the CNI spec says: argv only (no shell), the CNI_* variables as
// its whole environment, the config on stdin, and a deadline after which it is killed. It goes
// through the data plane's one process runner (src/dataplane/exec.ts): bounded like every other
// child, and in the agent started by its small spawner rather than by forking the agent (a fork
// of the agent cost ~4 ms of its CPU per plugin, the largest part of its work per extra network).
import { CommandTimeoutError, ProcessBusyError, runResult } from '../dataplane/exec.ts';

export interface ExecOutput {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export async function execPlugin(
  argv: string[],
  opts: { input: string; env: Record<string, string>; timeoutMs: number },
): Promise<ExecOutput> {
  try {
    const r = await runResult(argv[0]!, argv.slice(1), opts.input, {
      env: opts.env,
      timeoutMs: opts.timeoutMs,
    });
    return { ...r, timedOut: false };
  } catch (err: unknown) {
    if (err instanceof ProcessBusyError) throw err; // the caller answers "try again later"
    if (err instanceof CommandTimeoutError) return { code: -1, stdout: '', stderr: '', timedOut: true };
    return { code: 1, stdout: '', stderr: err instanceof Error ? err.message : String(err), timedOut: false };
  }
}
