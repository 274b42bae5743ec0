// Parent side of the spawner (spawner-child.ts): one long-lived small process that runs the
// agent's data-plane commands by argv, so the agent never forks itself per command. It answers
// like a direct spawn; when it dies, the jobs it held fail and the next job starts a new one.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { RunResult } from './exec.ts';

interface Pending {
  resolve: (r: RunResult & { timedOut: boolean }) => void;
  reject: (err: Error) => void;
}

interface Answer {
  id: number;
  code?: number;
  stdout?: string;
  stderr?: string;
  timedOut?: boolean;
  error?: string;
}

// From source the child sits beside this module; in the agent image's single-file bundle it ships
// as spawner-child.mjs beside the bundle (images/build.ts).
const CHILD_CANDIDATES = ['./spawner-child.ts', './spawner-child.mjs'].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);
const CHILD = CHILD_CANDIDATES.find((p) => existsSync(p));

export class Spawner {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;

  private child(): ChildProcessWithoutNullStreams {
    if (this.proc && this.proc.exitCode === null && !this.proc.killed) return this.proc;
    if (!CHILD) throw new Error(`the data-plane spawner is missing: none of ${CHILD_CANDIDATES.join(', ')}`);
    // A small heap keeps the spawner's own fork cheap; it holds no data of its own.
    const proc = spawn(process.execPath, ['--max-old-space-size=32', CHILD], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    proc.stderr.on('data', () => undefined);
    proc.stdin.on('error', () => undefined);
    createInterface({ input: proc.stdout }).on('line', (line) => this.answered(line));
    proc.on('exit', () => {
      if (this.proc === proc) this.proc = undefined;
      for (const p of this.pending.values()) p.reject(new Error('the data-plane spawner exited'));
      this.pending.clear();
    });
    this.proc = proc;
    return proc;
  }

  private answered(line: string): void {
    let a: Answer;
    try {
      a = JSON.parse(line) as Answer;
    } catch {
      return;
    }
    const p = this.pending.get(a.id);
    if (!p) return;
    this.pending.delete(a.id);
    if (a.error && a.code === undefined) p.reject(new Error(a.error));
    else
      p.resolve({
        code: a.code ?? 1,
        stdout: a.stdout ?? '',
        stderr: (a.stderr ?? '') + (a.error ?? ''),
        timedOut: a.timedOut ?? false,
      });
  }

  run(
    cmd: string,
    args: string[],
    input: string | undefined,
    timeoutMs: number,
    env?: Record<string, string>,
  ): Promise<RunResult & { timedOut: boolean }> {
    const proc = this.child();
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      proc.stdin.write(`${JSON.stringify({ id, cmd, args, input, timeoutMs, env })}\n`);
    });
  }

  close(): void {
    this.proc?.stdin.end();
    this.proc = undefined;
  }
}
