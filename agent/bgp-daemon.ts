// The node's BGP speaker process: BIRD 2, started by the agent as a child process in its own
// process group (detached), so it outlives the agent like a second container of the DaemonSet pod
// would: an agent restart or SIGKILL never stops it, and a new agent adopts it through its control
// socket instead of starting another. Its files live in <stateDir>/bird. The config is replaced
// atomically and applied with `birdc configure` (in place: sessions whose settings did not change
// stay up). Started with -R (graceful-restart recovery) so a restarted BIRD keeps the kernel routes
// it finds until its sessions have re-synchronised. Spawned with argv only, never a shell.
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  rmSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { BgpSession } from '../src/api/nodestatus.ts';
import { runResult } from '../src/dataplane/exec.ts';
import type { Logger } from '../src/log/logger.ts';
import { parseBirdProtocols } from '../src/routing/index.ts';

export class BirdError extends Error {
  override name = 'BirdError';
}

export class BirdDaemon {
  readonly dir: string;
  readonly configPath: string;
  readonly socketPath: string;
  private readonly log: Logger;
  private applied: string | undefined;

  constructor(stateDir: string, log: Logger) {
    this.dir = join(stateDir, 'bird');
    this.configPath = join(this.dir, 'bird.conf');
    this.socketPath = join(this.dir, 'bird.ctl');
    this.log = log;
  }

  private birdc(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return runResult('birdc', ['-s', this.socketPath, ...args]);
  }

  /** True when our control socket exists: a BIRD may run (cheap; running() asks it). */
  mayRun(): boolean {
    return existsSync(this.socketPath);
  }

  /** True when a BIRD answers on our control socket (ours from before an agent restart, or new). */
  async running(): Promise<boolean> {
    const r = await this.birdc(['show', 'status']).catch(() => undefined);
    return !!r && r.code === 0 && /Daemon is up and running/.test(r.stdout);
  }

  /** Writes the config when it changed and makes the daemon run it: starts BIRD, or reconfigures it. */
  async apply(config: string): Promise<'started' | 'reconfigured' | 'unchanged'> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const onDisk = readOrUndefined(this.configPath);
    if (onDisk !== config) {
      const tmp = `${this.configPath}.tmp`;
      writeFileSync(tmp, config, { mode: 0o600 });
      const check = await runResult('bird', ['-p', '-c', tmp]).catch((err: unknown) => {
        throw new BirdError(
          `cannot run bird (BIRD 2, Debian package bird2) on this node: ${err instanceof Error ? err.message : String(err)}`,
        );
      });
      if (check.code !== 0)
        throw new BirdError(
          `BIRD refused the rendered configuration: ${check.stderr.trim() || check.stdout.trim()}`,
        );
      renameSync(tmp, this.configPath);
    }
    if (!(await this.running())) {
      this.start();
      for (let i = 0; i < 100 && !(await this.running()); i++) await sleep(50);
      if (!(await this.running()))
        throw new BirdError(`BIRD did not answer on ${this.socketPath}; see ${join(this.dir, 'bird.log')}`);
      this.applied = config;
      return 'started';
    }
    // After an agent restart the daemon may run an older file: configure once, then only on change.
    if (this.applied === config && onDisk === config) return 'unchanged';
    const r = await this.birdc(['configure']);
    if (r.code !== 0 || !/Reconfigur/.test(r.stdout))
      throw new BirdError(`birdc configure failed: ${(r.stdout + r.stderr).trim()}`);
    this.applied = config;
    return 'reconfigured';
  }

  private start(): void {
    const logFd = openSync(join(this.dir, 'bird.log'), 'a', 0o600);
    try {
      const child = spawn(
        'bird',
        ['-f', '-R', '-c', this.configPath, '-s', this.socketPath, '-P', join(this.dir, 'bird.pid')],
        { detached: true, stdio: ['ignore', logFd, logFd] },
      );
      child.on('error', (err: unknown) => this.log.error({ err: String(err) }, 'could not start bird'));
      child.unref();
      this.log.info({ pid: child.pid, config: this.configPath }, 'started the BGP speaker (bird)');
    } finally {
      closeSync(logFd);
    }
  }

  /**
   * Stops the daemon gracefully: BGP Cease to every peer, so they withdraw our blocks at once.
   * Waits for it to exit, then removes its control socket (so mayRun() turns false).
   */
  async stop(): Promise<void> {
    if (await this.running()) {
      const r = await this.birdc(['down']);
      this.log.info({ answer: r.stdout.trim() }, 'stopped the BGP speaker (bird)');
      for (let i = 0; i < 100 && (await this.running()); i++) await sleep(50);
    }
    this.applied = undefined;
    rmSync(this.socketPath, { force: true });
  }

  /** Per-session state as the daemon reports it. */
  async sessions(): Promise<BgpSession[]> {
    const r = await this.birdc(['show', 'protocols', 'all']);
    if (r.code !== 0) throw new BirdError(`birdc show protocols failed: ${(r.stdout + r.stderr).trim()}`);
    return parseBirdProtocols(r.stdout);
  }
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
