// Runs the kernel's own tools (ip, bridge, nft, nsenter) as child processes, always as an argv
// with any batch on stdin: never through a shell, so no request value is ever parsed as shell
// text. One place for spawning so every data-plane failure carries the command and its stderr,
// and so every child is bounded: at most MAX_RUNNING at once, at most MAX_QUEUED waiting (more is
// refused with ProcessBusyError, which the CNI layer answers as "try again later"), and each is
// killed after its deadline (CommandTimeoutError).
import { spawn } from 'node:child_process';
import { Spawner } from './spawner.ts';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Text fed on stdin (an `ip -batch -` or `nft -f -` script). */
  input?: string;
  /** Kill the child after this long. @default DEFAULT_TIMEOUT_MS */
  timeoutMs?: number;
  /** The child's whole environment. @default this process's */
  env?: Record<string, string>;
}

/** Deadline of one child process unless the caller sets its own. */
export const DEFAULT_TIMEOUT_MS = 15_000;
/** Children running at once; the rest wait in a queue. */
export const MAX_RUNNING = 16;
/** Children waiting for a slot; past this a run is refused at once. */
export const MAX_QUEUED = 256;

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

/** The child did not finish within its deadline and was killed. */
export class CommandTimeoutError extends CommandError {
  constructor(command: string, ms: number) {
    super(command, -1, `killed after its ${ms} ms deadline`);
    this.name = 'CommandTimeoutError';
  }
}

/** Too many children running and queued: the caller should try again later. */
export class ProcessBusyError extends Error {
  constructor(command: string) {
    super(`${command}: ${MAX_RUNNING} commands running and ${MAX_QUEUED} queued; try again later`);
    this.name = 'ProcessBusyError';
  }
}

let spawner: Spawner | undefined;

/**
 * Runs every later command through one long-lived small spawner process instead of forking
 * this one (a large process such as the agent: see spawner-child.ts). Returns a stop function.
 */
export function useSpawner(): () => void {
  const s = new Spawner();
  spawner = s;
  return () => {
    if (spawner === s) spawner = undefined;
    s.close();
  };
}

let running = 0;
const waiting: (() => void)[] = [];

async function slot(command: string): Promise<void> {
  if (running < MAX_RUNNING) {
    running++;
    return;
  }
  if (waiting.length >= MAX_QUEUED) throw new ProcessBusyError(command);
  await new Promise<void>((resolve) => waiting.push(resolve));
}

function freeSlot(): void {
  const next = waiting.shift();
  if (next) next();
  else running--;
}

/** Children running and waiting right now (for tests and metrics). */
export function processLoad(): { running: number; queued: number } {
  return { running, queued: waiting.length };
}

/** Runs a command, feeding `input` on stdin; throws CommandError on a non-zero exit. */
export async function run(
  cmd: string,
  args: string[],
  input?: string,
  opts: RunOptions = {},
): Promise<string> {
  const r = await runResult(cmd, args, input, opts);
  if (r.code !== 0) throw new CommandError(describe(cmd, args, input), r.code, r.stderr);
  return r.stdout;
}

/** Runs a command and returns its exit code and output without throwing (except on timeout or overload). */
export async function runResult(
  cmd: string,
  args: string[],
  input?: string,
  opts: RunOptions = {},
): Promise<RunResult> {
  await slot(cmd);
  const stdin = input ?? opts.input;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    if (spawner) {
      const r = await spawner.run(cmd, args, stdin, timeoutMs, opts.env);
      if (r.timedOut) throw new CommandTimeoutError(describe(cmd, args, stdin), timeoutMs);
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    }
    return await spawnOnce(cmd, args, stdin, timeoutMs, opts.env);
  } finally {
    freeSlot();
  }
}

function spawnOnce(
  cmd: string,
  args: string[],
  input: string | undefined,
  timeoutMs: number,
  env: Record<string, string> | undefined,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new CommandTimeoutError(describe(cmd, args, input), timeoutMs));
        return;
      }
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
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
