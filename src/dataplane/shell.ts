// A few long-lived `sh` processes that run data-plane scripts for the agent. Forking the agent
// itself (a large Node process) for every ip/nsenter call costs more than the kernel work; a
// small shell forks cheaply. Each script runs in a subshell with its output captured up to a
// marker line carrying the exit status, so callers get the same errors as with a direct spawn.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CommandError } from './exec.ts';

interface Job {
  script: string;
  resolve: (out: string) => void;
  reject: (err: Error) => void;
}

const MARK = '__TRELLIS_DONE__';

class Worker {
  private readonly proc: ChildProcessWithoutNullStreams;
  private buf = '';
  private current: Job | undefined;
  private seq = 0;
  dead = false;
  private readonly onIdle: () => void;

  constructor(onIdle: () => void) {
    this.onIdle = onIdle;
    this.proc = spawn('sh', [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (c: Buffer) => this.data(c.toString('utf8')));
    this.proc.stderr.on('data', () => undefined);
    this.proc.on('exit', () => {
      this.dead = true;
      this.current?.reject(new Error('data-plane shell exited'));
      this.current = undefined;
    });
    this.proc.stdin.on('error', () => undefined);
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  run(job: Job): void {
    this.current = job;
    this.seq++;
    // The subshell keeps `set -e` and `exit` from ending the worker; stdin is closed for it.
    this.proc.stdin.write(`( ${job.script}\n) </dev/null 2>&1; printf '\\n${MARK} %s ${this.seq}\\n' "$?"\n`);
  }

  private data(text: string): void {
    this.buf += text;
    const re = new RegExp(`\\n?${MARK} (\\d+) ${this.seq}\\n`);
    const m = re.exec(this.buf);
    if (!m || !this.current) return;
    const out = this.buf.slice(0, m.index);
    this.buf = this.buf.slice(m.index + m[0].length);
    const job = this.current;
    this.current = undefined;
    const code = Number(m[1]);
    if (code === 0) job.resolve(out);
    else job.reject(new CommandError(`sh: ${job.script.split('\n').slice(0, 3).join('; ')}`, code, out));
    this.onIdle();
  }

  close(): void {
    this.proc.stdin.end();
  }
}

export class ShellPool {
  private readonly workers: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly size: number;

  constructor(size = 4) {
    this.size = size;
  }

  /** Runs a shell script (positional parameters are not available: quote values with `shq`). */
  run(script: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ script, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (let i = this.workers.length - 1; i >= 0; i--) if (this.workers[i]!.dead) this.workers.splice(i, 1);
    while (this.queue.length > 0) {
      let w = this.workers.find((x) => !x.busy);
      if (!w && this.workers.length < this.size) {
        w = new Worker(() => this.pump());
        this.workers.push(w);
      }
      if (!w) return;
      w.run(this.queue.shift()!);
    }
  }

  close(): void {
    for (const w of this.workers) w.close();
    this.workers.length = 0;
  }
}

/** Single-quotes a value for sh. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
