// Nat state the reference CNI plugins leave in the netns they run in, for the harnesses and benches
// whose node is the root netns. No vitest import: benches run this under plain node.
import { execFileSync } from 'node:child_process';

function tryRun(cmd: string, args: string[]): { ok: boolean; out: string } {
  try {
    return {
      ok: true,
      out: execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
    };
  } catch {
    return { ok: false, out: '' };
  }
}

/** Words of one `iptables -S` line, double-quoted ones (comments) kept whole. */
function ruleWords(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/**
 * The reference plugins leave nat state in the netns they run in, here the root one: portmap's DEL
 * removes a container's own chain but never its top-level CNI-HOSTPORT-* chains nor their jumps
 * from the nat hooks, and iptables leaves the `ip`/`ip6 nat` tables it created (bridge's ipMasq
 * too). Once no container mapping is left, those chains go, and so does a nat table left empty.
 */
export function cleanupRootNat(): void {
  for (const [tool, family] of [
    ['iptables', 'ip'],
    ['ip6tables', 'ip6'],
  ] as const) {
    const listed = tryRun(tool, ['-t', 'nat', '-S']);
    if (!listed.ok) continue;
    const lines = listed.out.split('\n').filter(Boolean);
    if (lines.some((l) => l.startsWith('-A CNI-HOSTPORT-DNAT '))) continue; // a mapping still in use
    for (const l of lines)
      if (/^-A (PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-HOSTPORT-/.test(l))
        tryRun(tool, ['-t', 'nat', '-D', ...ruleWords(l).slice(1)]);
    const chains = lines.filter((l) => l.startsWith('-N CNI-HOSTPORT-')).map((l) => l.slice(3));
    for (const c of chains) tryRun(tool, ['-t', 'nat', '-F', c]);
    for (const c of chains) tryRun(tool, ['-t', 'nat', '-X', c]);
    const left = tryRun(tool, ['-t', 'nat', '-S']);
    if (left.ok && left.out.split('\n').every((l) => !l || l.startsWith('-P ')))
      tryRun('nft', ['delete', 'table', family, 'nat']);
  }
}
