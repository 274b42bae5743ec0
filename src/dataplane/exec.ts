// Runs the kernel's own tools (ip, bridge, nft, nsenter) as child processes. One place for
// spawning so every data-plane failure carries the command and its stderr, which is what a user
// needs to see in the agent log or a CNI error.
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  readonly command: string;
  readonly code: number;
  readonly stderr: string;

  constructor(command: string, code: number, stderr: string) {
    super(`${command} failed (exit ${code}): ${stderr.trim() || '(no output)'}`);
    this.name = 'CommandError';
    this.command = command;
    this.code = code;
    this.stderr = stderr;
  }
}

/** Runs a command, feeding `input` on stdin; throws CommandError on a non-zero exit. */
export async function run(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await runResult(cmd, args, input);
  if (r.code !== 0) throw new CommandError(describe(cmd, args, input), r.code, r.stderr);
  return r.stdout;
}

/** Runs a command and returns its exit code and output without throwing. */
export function runResult(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

function describe(cmd: string, args: string[], input?: string): string {
  const line = [cmd, ...args].join(' ');
  if (!input) return line;
  const first = input.split('\n').filter(Boolean);
  return `${line} <<< ${first.slice(0, 3).join('; ')}${first.length > 3 ? ` (+${first.length - 3} lines)` : ''}`;
}
