// One long-lived `ip -force -batch -` for the caller's own network namespace, fed over stdin, so a
// CNI ADD's node-side changes cost no process start (each start was most of the agent's CPU per
// pod). Writes only: `ip` remembers interface names from the link dumps its reads make, and a
// process that lives on would answer later names from a stale memory; writes resolve names afresh.
//
// How a job's end and its failures are known: with -force, `ip` goes on after a failed line and
// prints the error, then `Command failed -:N` (N the line number since it started) on stderr, which
// is unbuffered, so stderr arrives in order. Each job is followed by a line naming an object `ip`
// does not know; its `Command failed` marks the job done. One job is in flight at a time. Unlike
// a one-shot `ip -batch`, the lines of a job after a failed one still run; callers roll the whole
// job back on failure, as they did. An argument `ip` rejects outright ends the process (iproute2
// exits there): the job fails with that message and the next job starts a new process.
//
// `ip` never closes a namespace it opened for `netns PATH` (harmless in a one-shot run): a job
// that names one says so (`holdsNamespace`), and the process is retired after HOLD_LIMIT such
// jobs or once it has been idle for RETIRE_IDLE_MS, so it keeps no pod's namespace alive for long
// and never runs out of descriptors.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CommandError, CommandTimeoutError, DEFAULT_TIMEOUT_MS } from './exec.ts';

/** A line `ip` answers with "Object ... is unknown": the end-of-job marker. */
const MARKER = 'trellis-end-of-job';
const FAILED = /^Command failed -:(\d+)$/;
/** Jobs holding a namespace open before the process is replaced. */
export const HOLD_LIMIT = 64;
/** Idle time after which a process holding namespaces is replaced. */
export const RETIRE_IDLE_MS = 1000;

export interface JobOptions {
  /** Kill the process and fail the job after this long. @default DEFAULT_TIMEOUT_MS */
  timeoutMs?: number;
  /** A line opens a namespace by path (`netns PATH`), which `ip` keeps open for its life. */
  holdsNamespace?: boolean;
}

interface Job {
  lines: string[];
  timeoutMs: number;
  holdsNamespace: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  /** Line numbers (in the process's count) of this job's first line and of its marker. */
  first: number;
  marker: number;
  /** Error text of each failed line, by its index in `lines`. */
  failures: string[];
  timer?: NodeJS.Timeout;
  /** The process it was written to. */
  proc?: ChildProcessWithoutNullStreams;
}

export class IpBatchSession {
  /** Namespace (by path) the session acts in; the caller's own when absent. */
  private readonly netns: string | undefined;
  private proc: ChildProcessWithoutNullStreams | undefined;
  private readonly queue: Job[] = [];
  private current: Job | undefined;
  /** Lines written to the running process so far. */
  private written = 0;
  /** Partial stderr line, and the error text seen since the last `Command failed`. */
  private partial = '';
  private text: string[] = [];
  /** Jobs of the running process that left a namespace open in it, and the idle retirement timer. */
  private held = 0;
  private retireTimer: NodeJS.Timeout | undefined;

  constructor(opts: { netns?: string } = {}) {
    this.netns = opts.netns;
  }

  /** Applies `lines` (iproute2 commands without the leading `ip`); rejects with a CommandError naming every failed line. */
  run(lines: string[], opts: JobOptions = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const holdsNamespace = opts.holdsNamespace ?? false;
    if (lines.length === 0) return Promise.resolve();
    for (const l of lines) {
      // One command per line, and no line may read as the marker or end early at a comment.
      if (l.includes('\n') || l.includes('#') || l.startsWith(MARKER))
        throw new Error(`not an ip batch line: ${JSON.stringify(l)}`);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({
        lines,
        timeoutMs,
        holdsNamespace,
        resolve,
        reject,
        first: 0,
        marker: 0,
        failures: [],
      });
      this.next();
    });
  }

  /** Ends the process (it also ends by itself when this process exits: its stdin closes). */
  close(): void {
    this.retire();
  }

  /** The running process finishes what it was given and exits; the next job starts another. */
  private retire(): void {
    clearTimeout(this.retireTimer);
    this.retireTimer = undefined;
    this.proc?.stdin.end();
    this.proc = undefined;
    this.held = 0;
  }

  private start(): ChildProcessWithoutNullStreams {
    this.held = 0;
    const ip = ['ip', '-force', '-batch', '-'];
    const [cmd, ...args] = this.netns ? ['nsenter', `--net=${this.netns}`, '--', ...ip] : ip;
    const proc = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.written = 0;
    this.partial = '';
    this.text = [];
    proc.stdout.on('data', () => undefined);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk: string) => {
      if (this.proc === proc) this.stderr(chunk);
    });
    proc.stdin.on('error', () => undefined);
    proc.on('error', (err) => this.exited(proc, String(err)));
    // 'close', not 'exit': the message that ended it may still be in the stderr pipe at exit
    proc.on('close', (code, signal) => this.exited(proc, `ip exited (${signal ?? `code ${code}`})`));
    this.proc = proc;
    return proc;
  }

  private next(): void {
    if (this.current) return;
    const job = this.queue.shift();
    if (!job) {
      this.idle(true);
      if (this.held > 0 && !this.retireTimer) {
        this.retireTimer = setTimeout(() => this.retire(), RETIRE_IDLE_MS);
        this.retireTimer.unref();
      }
      return;
    }
    clearTimeout(this.retireTimer);
    this.retireTimer = undefined;
    this.current = job;
    let proc: ChildProcessWithoutNullStreams;
    try {
      proc = this.proc ?? this.start();
    } catch (err: unknown) {
      this.finish(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.idle(false);
    job.first = this.written + 1;
    this.written += job.lines.length + 1;
    job.marker = this.written;
    job.proc = proc;
    job.timer = setTimeout(() => {
      const p = this.proc;
      this.proc = undefined;
      p?.kill('SIGKILL');
      this.finish(new CommandTimeoutError(describe(job.lines), job.timeoutMs));
    }, job.timeoutMs);
    proc.stdin.write(`${job.lines.join('\n')}\n${MARKER}\n`);
  }

  private stderr(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) {
      const job = this.current;
      const failed = FAILED.exec(line);
      if (!failed) {
        if (!line.startsWith(`Object "${MARKER}"`) && line.trim()) this.text.push(line.trim());
        continue;
      }
      const n = Number(failed[1]);
      const text = this.text.join('; ');
      this.text = [];
      if (!job) continue;
      if (n === job.marker) {
        this.finish(job.failures.length ? this.error(job) : undefined);
      } else if (n >= job.first && n < job.marker) {
        job.failures[n - job.first] = text || '(no message)';
      }
    }
  }

  private exited(proc: ChildProcessWithoutNullStreams, why: string): void {
    if (this.proc === proc) this.proc = undefined;
    const job = this.current;
    if (!job || job.proc !== proc) return;
    const last = [...this.text, this.partial.trim()].filter(Boolean).join('; ');
    this.text = [];
    this.partial = '';
    // The line that ended it is the first one not answered; name the whole job if unknown.
    const failures = job.failures.length ? this.error(job).stderr : '';
    this.finish(new CommandError(describe(job.lines), 1, [failures, last, why].filter(Boolean).join('; ')));
  }

  private error(job: Job): CommandError {
    const parts = job.failures.flatMap((text, i) => (text ? [`${text} (at "${job.lines[i]}")`] : []));
    return new CommandError(describe(job.lines), 1, parts.join('; '));
  }

  private finish(err: Error | undefined): void {
    const job = this.current;
    if (!job) return;
    clearTimeout(job.timer);
    this.current = undefined;
    if (job.holdsNamespace && job.proc === this.proc && ++this.held >= HOLD_LIMIT) this.retire();
    if (err) job.reject(err);
    else job.resolve();
    this.next();
  }

  /** An idle session must not keep this process alive; a busy one must. */
  private idle(yes: boolean): void {
    const p = this.proc;
    if (!p) return;
    for (const h of [p, p.stdin, p.stdout, p.stderr] as unknown as { ref(): void; unref(): void }[]) {
      if (yes) h.unref();
      else h.ref();
    }
  }
}

function describe(lines: string[]): string {
  return `ip -batch - <<< ${lines.slice(0, 3).join('; ')}${lines.length > 3 ? ` (+${lines.length - 3} lines)` : ''}`;
}

let root: IpBatchSession | undefined;

/** The session for this process's own network namespace (started on first use). */
export function rootIp(): IpBatchSession {
  root ??= new IpBatchSession();
  return root;
}
