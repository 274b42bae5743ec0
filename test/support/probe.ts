// Reachability as a pod sees it: the lab's prober (lab/prober.ts) run inside a netns (a pod's or a
// node's), probing every target in parallel in one process. Shared by the e2e files.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { ProbeOutcome, ProbeTarget } from '../../lab/prober.ts';
import { NODE_BIN, REPO } from '../../lab/state.ts';

export type { ProbeOutcome, ProbeTarget };

/** One outcome per target, in order; a prober that printed nothing fails every target with its stderr. */
export function probeFrom(netns: string, targets: ProbeTarget[]): ProbeOutcome[] {
  const res = spawnSync(
    'ip',
    ['netns', 'exec', netns, NODE_BIN, join(REPO, 'lab', 'prober.ts'), JSON.stringify(targets)],
    { encoding: 'utf8' },
  );
  if (res.stdout.trim()) return JSON.parse(res.stdout) as ProbeOutcome[];
  const error = `prober printed nothing: ${res.stderr || res.error?.message || `exit ${res.status}`}`;
  return targets.map((t) => ({ id: t.id, tcp: { ok: false, error } }));
}
