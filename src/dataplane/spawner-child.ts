// The agent's spawner: a small, long-lived Node process that starts the data-plane tools for the
// agent. Forking the agent itself (hundreds of MB) costs ~10 ms per child on a loaded node; this
// process is small, so its fork is cheap. It runs argv only (never a shell): each request is one
// JSON line {id, cmd, args, input, timeoutMs, env?}; each answer one JSON line {id, code, stdout,
// stderr, timedOut, error}. It exits when its stdin closes (the agent went away).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

interface Job {
  id: number;
  cmd: string;
  args: string[];
  input?: string;
  timeoutMs: number;
  /** The child's whole environment (CNI plugins get exactly the CNI_* set); else ours. */
  env?: Record<string, string>;
}

function answer(msg: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
}

function start(job: Job): void {
  let child;
  try {
    child = spawn(job.cmd, job.args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(job.env ? { env: job.env } : {}),
    });
  } catch (err: unknown) {
    answer({ id: job.id, error: String(err) });
    return;
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let timedOut = false;
  let failed = '';
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, job.timeoutMs);
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.on('error', (e) => (failed = String(e)));
  child.on('close', (code) => {
    clearTimeout(timer);
    answer({
      id: job.id,
      code: code ?? 1,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      timedOut,
      ...(failed ? { error: failed } : {}),
    });
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(job.input ?? '');
}

createInterface({ input: process.stdin }).on('line', (line) => {
  let job: Job;
  try {
    job = JSON.parse(line) as Job;
  } catch {
    return;
  }
  if (typeof job.cmd !== 'string' || !Array.isArray(job.args)) {
    answer({ id: job.id, error: 'malformed job' });
    return;
  }
  start(job);
});
process.stdin.on('end', () => process.exit(0));
