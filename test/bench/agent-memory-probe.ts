// Memory probe for the agent, loaded with --import through the bench's --agent-env (not part of the
// agent): every second it appends process.memoryUsage() and the new space's size to a log, and on
// SIGUSR2 (the bench's --signal-phases) it appends the split before and after a full GC and the
// process's resident memory by kind of mapping (V8's 256 KiB heap pages, the malloc heap, files...).
// usage: node test/bench/multinet-bench.ts --signal-phases \
//   "--agent-env=NODE_OPTIONS=--max-semi-space-size=8 --expose-gc --import=$PWD/test/bench/agent-memory-probe.ts" \
//   "--agent-env=TRELLIS_MEMORY_LOG=/tmp/agent-memory.log"
import { appendFileSync, readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const out = process.env.TRELLIS_MEMORY_LOG ?? '/tmp/agent-memory.log';
const mib = (bytes: number): string => (bytes / 1048576).toFixed(1);

/** Resident KiB by kind of mapping, from /proc/self/smaps. */
function residentByKind(): Record<string, number> {
  const kinds: Record<string, number> = {};
  let kind = '';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const kib = (parseInt(m[2]!, 16) - parseInt(m[1]!, 16)) / 1024;
      const name = m[3] ?? '';
      kind = name.startsWith('/') ? 'files' : name || (kib === 256 ? 'v8-pages' : 'anonymous');
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && kind) kinds[kind] = (kinds[kind] ?? 0) + Number(rss[1]);
  }
  return kinds;
}

function split(): string {
  const m = process.memoryUsage();
  return `rss=${mib(m.rss)} heapTotal=${mib(m.heapTotal)} heapUsed=${mib(m.heapUsed)} external=${mib(m.external)}`;
}

if (process.argv[1]?.endsWith('agent/main.ts')) {
  setInterval(() => {
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    appendFileSync(out, `${new Date().toISOString()} ${split()} new=${mib(young?.space_size ?? 0)}\n`);
  }, 1000).unref();
  process.on('SIGUSR2', () => {
    const kinds = Object.entries(residentByKind())
      .map(([k, kib]) => `${k}=${(kib / 1024).toFixed(1)}`)
      .join(' ');
    appendFileSync(out, `PHASE before GC: ${split()}\n  resident MiB: ${kinds}\n`);
    (globalThis as { gc?: () => void }).gc?.();
    appendFileSync(out, `PHASE after GC: ${split()}\n`);
  });
}
