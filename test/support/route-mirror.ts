// Starts the agent's learned-route mirror alone inside a netns (bgp-mirror-child.ts), for tests
// and the benchmark that run BIRD without a whole agent. Detached: the caller kills it with the
// netns's processes.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { NODE_BIN, REPO } from '../../lab/state.ts';
import { BGP_KERNEL_TABLE } from '../../src/routing/index.ts';

/** Resolves once the mirror has synced the first time. */
export async function startRouteMirror(netns: string): Promise<void> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      netns,
      NODE_BIN,
      join(REPO, 'test', 'support', 'bgp-mirror-child.ts'),
      String(BGP_KERNEL_TABLE),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], detached: true },
  );
  child.unref();
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`the route mirror exited (${code})`)));
  });
  child.stdout.destroy();
}
