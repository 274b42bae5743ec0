// Runs the host tools the lab drives (ip, nft, ping) and turns a failure into an error that shows
// the command and its stderr. The lab only ever touches namespaces, links and tables it named itself.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export class CommandError extends Error {
  readonly status: number | null;
  readonly stderr: string;
  constructor(cmd: string[], status: number | null, stderr: string) {
    super(`\`${cmd.join(' ')}\` failed (exit ${status}): ${stderr.trim() || '(no output)'}`);
    this.name = 'CommandError';
    this.status = status;
    this.stderr = stderr;
  }
}

/** Runs a command synchronously; throws CommandError unless it exits 0. Returns stdout. */
export function run(cmd: string[], input?: string): string {
  const res = spawnSync(cmd[0], cmd.slice(1), { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (res.error) throw new CommandError(cmd, null, String(res.error));
  if (res.status !== 0) throw new CommandError(cmd, res.status, res.stderr ?? '');
  return res.stdout ?? '';
}

/** Like run, but answers false instead of throwing (for cleanup of things that may be gone). */
export function tryRun(cmd: string[]): boolean {
  const res = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
  return res.status === 0;
}

export interface Output {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Like run, but without blocking the event loop: throws CommandError unless it exits 0. */
export async function runChecked(cmd: string[]): Promise<string> {
  const out = await runAsync(cmd);
  if (out.status !== 0) throw new CommandError(cmd, out.status, out.stderr);
  return out.stdout;
}

/** Runs a command asynchronously with an optional stdin and timeout; never throws on exit status. */
export function runAsync(
  cmd: string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Output> {
  return new Promise((resolve) => {
    const child = spawn(cmd[0], cmd.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          stderr += `\n(killed after ${opts.timeoutMs} ms)`;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.on('error', (err) => {
      stderr += String(err);
    });
    child.on('close', (status) => {
      if (timer) clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Prefix for running a command inside a named network namespace. */
export function inNetns(netns: string, cmd: string[]): string[] {
  return ['ip', 'netns', 'exec', netns, ...cmd];
}

/** Whether the named netns is mounted (what `ip netns list` reads, without its per-netns id queries). */
export function netnsExists(name: string): boolean {
  return !name.includes('/') && existsSync(`/run/netns/${name}`);
}

export function linkExists(name: string, netns?: string): boolean {
  const cmd = ['ip', 'link', 'show', 'dev', name];
  return tryRun(netns ? inNetns(netns, cmd) : cmd);
}
