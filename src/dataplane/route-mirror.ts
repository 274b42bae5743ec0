// Learned BGP routes reach the main table with OUR protocol number (PEER_ROUTE_PROTO), not the
// speaker's: BIRD 2 writes every kernel route as `proto bird` (its netlink code hard-codes
// RTPROT_BIRD; krt_source is read-only), so BIRD installs into a table of its own, which nothing
// routes from, and this mirror copies that table into main. A route event in the speaker's table
// (`ip monitor`) triggers a full read-and-diff of it, never an incremental replay, so a lost or
// reordered event cannot leave a wrong route: the next event or the agent's periodic reconcile
// repairs it. Syncs run one at a time; events that arrive meanwhile fold into one more run.
// Killed, the mirror leaves main as it was (routes keep forwarding); a new one re-reads the table.
import { spawn, type ChildProcess } from 'node:child_process';
import { runResult } from './exec.ts';
import { readSpeakerRoutes, syncBgp } from './peers.ts';

export interface MirrorLog {
  warn(obj: object, msg: string): void;
}

export class LearnedRouteMirror {
  readonly table: number;
  private readonly log: MirrorLog | undefined;
  private ownBlocks: string[] = [];
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private monitor: ChildProcess | undefined;
  private stopped = true;
  /** Learned routes installed by the last sync. */
  installed = 0;

  constructor(table: number, log?: MirrorLog) {
    this.table = table;
    this.log = log;
  }

  /** Starts watching the speaker's table (idempotent) and syncs once. */
  start(): Promise<void> {
    if (this.stopped) {
      this.stopped = false;
      this.watch();
    }
    return this.sync();
  }

  /** Sets this node's own blocks (their blackholes go in the same sync) and syncs. */
  setOwnBlocks(blocks: string[]): Promise<void> {
    this.ownBlocks = [...blocks];
    return this.sync();
  }

  /** One read-and-diff after everything asked so far; concurrent callers share the queued run. */
  sync(): Promise<void> {
    if (this.queued) return this.queued;
    const prev = this.running ?? Promise.resolve();
    const next: Promise<void> = prev
      .catch(() => undefined)
      .then(async () => {
        this.queued = undefined;
        this.running = next;
        this.installed = await syncBgp(this.ownBlocks, await readSpeakerRoutes(this.table));
      })
      .finally(() => {
        if (this.running === next) this.running = undefined;
      });
    this.queued = next;
    return next;
  }

  private trigger(): void {
    this.sync().catch((err: unknown) =>
      this.log?.warn({ err: String(err), table: this.table }, 'mirroring learned routes failed'),
    );
  }

  private watch(): void {
    const child = spawn('ip', ['-o', 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.monitor = child;
    const mine = new RegExp(`\\btable ${this.table}\\b`);
    let partial = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      if (lines.some((l) => mine.test(l))) this.trigger();
    });
    // e.g. "netlink receive error No buffer space available": events were lost, so re-read.
    child.stderr.on('data', () => this.trigger());
    child.on('error', (err: unknown) => this.log?.warn({ err: String(err) }, 'ip monitor failed'));
    child.on('exit', () => {
      if (this.monitor !== child || this.stopped) return;
      setTimeout(() => {
        if (!this.stopped) {
          this.watch();
          this.trigger();
        }
      }, 1000).unref();
    });
  }

  /** Stops watching; the routes stay (see removeAll). */
  stop(): void {
    this.stopped = true;
    this.monitor?.kill();
    this.monitor = undefined;
  }

  /** Stops, and empties the speaker's table (a stopped BIRD leaves it as is: `persist`). Main is not touched. */
  async stopAndFlush(): Promise<void> {
    this.stop();
    await this.queued?.catch(() => undefined);
    await this.running?.catch(() => undefined);
    await runResult('ip', ['-4', 'route', 'flush', 'table', String(this.table)]);
    await runResult('ip', ['-6', 'route', 'flush', 'table', String(this.table)]);
  }
}
