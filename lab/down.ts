// `trellis lab down`: stops every process the lab recorded, kills whatever still runs inside the
// lab's namespaces, deletes the namespaces (their links, routes and nft tables go with them) and
// the underlay bridge, and stops the control plane. Works after a crash: it needs only the state
// dir, and falls back to the default prefix when lab.json is gone. Logs are kept.
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { killRecorded } from '../src/controlplane/controlplane.ts';
import { stopRealNodes } from './nodes/node.ts';
import { destroyUnderlay } from './underlay.ts';
import { killRecordedProcess, readState, recordedNames, statePath } from './state.ts';

export interface DownOptions {
  stateDir: string;
  /** used when lab.json is missing */
  prefix?: string;
}

export interface DownReport {
  stateDir: string;
  stopped: string[];
  removed: string[];
}

/** Deletes everything below dir except *.log files (kept for post-mortems). */
function removeAllButLogs(dir: string): void {
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p, { throwIfNoEntry: false })?.isDirectory()) {
      removeAllButLogs(p);
      if (readdirSync(p).length === 0) rmSync(p, { recursive: true, force: true });
    } else if (!f.endsWith('.log')) rmSync(p, { force: true });
  }
}

export async function down(opts: DownOptions): Promise<DownReport> {
  const state = readState(opts.stateDir);
  const prefix = state?.prefix ?? opts.prefix ?? 'trl';
  const bridge = state?.bridge ?? `${prefix}-br0`;
  const stopped: string[] = [];
  for (const name of recordedNames(opts.stateDir)) {
    if (killRecordedProcess(opts.stateDir, name)) stopped.push(name);
  }
  // real nodes first: their containers live outside the lab's netns list (own cgroups, mount ns)
  if (state?.realNodes) {
    stopped.push(
      ...stopRealNodes(
        opts.stateDir,
        prefix,
        state.nodes.map((n) => n.name),
      ),
    );
  }
  killRecorded(join(opts.stateDir, 'controlplane'));
  const removed = destroyUnderlay(prefix, bridge);
  rmSync(statePath(opts.stateDir), { force: true });
  removeAllButLogs(opts.stateDir);
  return { stateDir: opts.stateDir, stopped, removed };
}
