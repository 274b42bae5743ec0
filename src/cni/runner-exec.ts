// Executes one plugin binary as the CNI spec says: argv only (no shell), the CNI_* variables as
// its whole environment, the config on stdin, and a deadline after which it is killed.
import { spawn } from 'node:child_process';

export interface ExecOutput {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export function execPlugin(
  argv: string[],
  opts: { input: string; env: Record<string, string>; timeoutMs: number },
): Promise<ExecOutput> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (e) => {
      spawnError = String(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + spawnError,
        timedOut,
      });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input);
  });
}
