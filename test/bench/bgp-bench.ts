// BGP benchmark (figures, not a test), on real BIRD 2 in network namespaces: two racks joined by
// their top-of-rack routers (eBGP, one AS per rack), one node per rack running the BIRD config that
// the agent renders (src/routing). Measures:
//  - convergence: a new block on node A (the agent's path: rewrite bird.conf, `birdc configure`)
//    until a ping from node C in the other rack to an address in that block answers; p50/p99 over N;
//  - withdraw: node A stops (as when its Node is deleted: `birdc down`) until its blocks have left
//    node C's kernel;
//  - scale: node A announces 1,000 blocks at once (standing in for many nodes) until node C has
//    installed them all.
// Node C runs the agent's learned-route mirror (BIRD's table -> main, our protocol number), so
// reachability includes it. The agent's share on node A (IPBlock watch, 100 ms debounce) is not in these figures.
// Run under the e2e lock: flock /tmp/trellis-e2e.lock node_modules/.bin/node test/bench/bgp-bench.ts
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PEER_ROUTE_PROTO } from '../../src/dataplane/peers.ts';
import { startRouteMirror } from '../support/route-mirror.ts';
import {
  BGP_KERNEL_TABLE,
  planSessions,
  renderBirdConfig,
  renderTorConfig,
} from '../../src/routing/index.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const BLOCKS = opt('blocks', 50);
const SCALE = opt('scale', 1000);
const P = 'tbgb';
const NS = { a: `${P}-a`, t1: `${P}-t1`, t2: `${P}-t2`, c: `${P}-c` };
const dir = mkdtempSync(join(tmpdir(), 'trellis-bgp-bench-'));
const POOL = '10.248.0.0/14';

function ip(ns: string, ...a: string[]): string {
  return execFileSync('ip', ['-n', ns, ...a], { encoding: 'utf8' });
}

function link(a: string, aIf: string, aAddr: string, b: string, bIf: string, bAddr: string): void {
  execFileSync('ip', [
    'link',
    'add',
    `${P}x`,
    'netns',
    a,
    'type',
    'veth',
    'peer',
    'name',
    `${P}y`,
    'netns',
    b,
  ]);
  ip(a, 'link', 'set', `${P}x`, 'name', aIf);
  ip(b, 'link', 'set', `${P}y`, 'name', bIf);
  ip(a, 'addr', 'add', aAddr, 'dev', aIf);
  ip(b, 'addr', 'add', bAddr, 'dev', bIf);
  ip(a, 'link', 'set', aIf, 'up');
  ip(b, 'link', 'set', bIf, 'up');
}

function cleanup(): void {
  for (const ns of Object.values(NS)) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean);
    for (const p of pids) spawnSync('kill', ['-9', p]);
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

function bird(ns: string, name: string, conf: string): void {
  const c = join(dir, `${name}.conf`);
  writeFileSync(c, conf);
  const child = spawn('ip', ['netns', 'exec', ns, 'bird', '-f', '-c', c, '-s', join(dir, `${name}.ctl`)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  child.unref();
}

function birdc(name: string, ...a: string[]): string {
  return execFileSync('birdc', ['-s', join(dir, `${name}.ctl`), ...a], { encoding: 'utf8', stdio: 'pipe' });
}

function nodeConf(blocks: string[]): string {
  return renderBirdConfig({
    node: 'a',
    clusterNetwork: 'bench',
    routerId: '198.19.1.11',
    asNumber: 64512,
    gracefulRestartSeconds: 120,
    ownBlocks: blocks,
    pools: [POOL],
    sessions: planSessions(
      { asNumber: 64512, nodeToNodeMesh: false, peers: [{ address: '198.19.1.1', asNumber: 65001 }] },
      { name: 'a', labels: {}, address: '198.19.1.11' },
      [],
    ),
  });
}

function block(i: number): string {
  return `10.${248 + Math.floor(i / 1024)}.${Math.floor(i / 4) % 256}.${(i % 4) * 64}/26`;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

function dump(): string {
  return ['a', 't1', 't2', 'c']
    .map((n) => {
      try {
        return `--- ${n}\n${birdc(n, 'show', 'route')}${birdc(n, 'show', 'protocols')}`;
      } catch (err: unknown) {
        return `--- ${n}: ${String(err)}`;
      }
    })
    .join('\n');
}

async function until(what: string, fn: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${dump()}`);
    await sleep(2);
  }
}

/** Learned routes in main with our protocol number (what forwards), or in BIRD's own table. */
function learned(ns: string, table: 'main' | 'bird' = 'main'): number {
  const where = table === 'main' ? ['proto', String(PEER_ROUTE_PROTO)] : ['table', String(BGP_KERNEL_TABLE)];
  return ip(ns, 'route', 'show', ...where)
    .split('\n')
    .filter(Boolean).length;
}

async function main(): Promise<void> {
  cleanup();
  for (const ns of Object.values(NS)) {
    execFileSync('ip', ['netns', 'add', ns]);
    ip(ns, 'link', 'set', 'lo', 'up');
  }
  link(NS.a, 'rk0', '198.19.1.11/24', NS.t1, 'rack0', '198.19.1.1/24');
  link(NS.t1, 'spine0', '198.19.0.1/24', NS.t2, 'spine0', '198.19.0.2/24');
  link(NS.t2, 'rack0', '198.19.2.1/24', NS.c, 'rk0', '198.19.2.11/24');
  for (const t of [NS.t1, NS.t2])
    execFileSync('ip', ['netns', 'exec', t, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  // the probes' replies go to node C's rack address: the routers know each other's rack subnet
  ip(NS.t1, 'route', 'add', '198.19.2.0/24', 'via', '198.19.0.2');
  ip(NS.t2, 'route', 'add', '198.19.1.0/24', 'via', '198.19.0.1');
  ip(NS.a, 'route', 'add', 'default', 'via', '198.19.1.1');
  // node C has NO default route: its pings reach node A's blocks only through the learned routes
  // that the mirror installs in main, so the figure includes them (a miss fails at once, no wait)
  bird(
    NS.t1,
    't1',
    renderTorConfig({
      name: 'rack1',
      routerId: '198.19.1.1',
      asNumber: 65001,
      neighbors: [
        { address: '198.19.1.11', asNumber: 64512, description: 'node a' },
        { address: '198.19.0.2', asNumber: 65002, description: 'router of rack2' },
      ],
    }),
  );
  bird(
    NS.t2,
    't2',
    renderTorConfig({
      name: 'rack2',
      routerId: '198.19.2.1',
      asNumber: 65002,
      neighbors: [
        { address: '198.19.2.11', asNumber: 64512, description: 'node c' },
        { address: '198.19.0.1', asNumber: 65001, description: 'router of rack1' },
      ],
    }),
  );
  const cConf = renderBirdConfig({
    node: 'c',
    clusterNetwork: 'bench',
    routerId: '198.19.2.11',
    asNumber: 64512,
    gracefulRestartSeconds: 120,
    ownBlocks: [],
    pools: [POOL],
    sessions: planSessions(
      { asNumber: 64512, nodeToNodeMesh: false, peers: [{ address: '198.19.2.1', asNumber: 65002 }] },
      { name: 'c', labels: {}, address: '198.19.2.11' },
      [],
    ),
  });
  bird(NS.c, 'c', cConf);
  await startRouteMirror(NS.c); // node C's agent share that forwards: BIRD's table -> main
  const aBlocks: string[] = [];
  const aConf = join(dir, 'a.conf');
  bird(NS.a, 'a', nodeConf(aBlocks));
  await until('sessions up', () => {
    try {
      return ['a', 'c'].every((n) => /Established/.test(birdc(n, 'show', 'protocols')));
    } catch {
      return false;
    }
  });
  // a short warm-up so the routers' tables and the first spawns are not in the figures
  await sleep(1000);

  const conv: number[] = [];
  for (let i = 0; i < BLOCKS; i++) {
    const b = block(i);
    const addr = b.replace(/\.(\d+)\/26$/, (_m, o: string) => `.${Number(o) + 1}`);
    ip(NS.a, 'addr', 'add', `${addr}/32`, 'dev', 'lo');
    const t0 = performance.now();
    aBlocks.push(b);
    writeFileSync(aConf, nodeConf(aBlocks));
    birdc('a', 'configure');
    await until(
      `${b} reachable from rack2`,
      () =>
        spawnSync('ip', ['netns', 'exec', NS.c, 'ping', '-n', '-c', '1', '-W', '0.05', addr]).status === 0,
    );
    conv.push(performance.now() - t0);
  }

  const installed = ip(NS.c, 'route', 'show', block(0)).trim();

  // scale: node A announces SCALE more blocks at once
  const many = Array.from({ length: SCALE }, (_, i) => block(1000 + i));
  const before = learned(NS.c);
  const t1 = performance.now();
  writeFileSync(aConf, nodeConf([...aBlocks, ...many]));
  birdc('a', 'configure');
  let inBirdTable = 0;
  await until(
    `${SCALE} blocks installed on node c`,
    () => {
      if (!inBirdTable && learned(NS.c, 'bird') >= before + SCALE) inBirdTable = performance.now() - t1;
      return learned(NS.c) >= before + SCALE;
    },
    120_000,
  );
  const install = performance.now() - t1;

  // withdraw: node A stops announcing (a deleted node)
  const t2 = performance.now();
  birdc('a', 'down');
  await until("node a's blocks withdrawn from node c", () => learned(NS.c) === 0, 60_000);
  const withdraw = performance.now() - t2;

  const ms = (x: number) => `${x.toFixed(0)} ms`;
  console.log(
    `BGP benchmark (${spawnSync('bird', ['--version'], { encoding: 'utf8' }).stderr.trim() || 'BIRD 2'}; 2 racks, eBGP via two routers)`,
  );
  console.log(
    `convergence, new block -> reachable from the other rack (${BLOCKS} blocks): p50 ${ms(pct(conv, 50))}, p99 ${ms(pct(conv, 99))}, max ${ms(Math.max(...conv))}  (target p99 < 1000 ms: ${pct(conv, 99) < 1000 ? 'met' : 'NOT met'}, ratio ${(pct(conv, 99) / 1000).toFixed(2)})`,
  );
  console.log(
    `install ${SCALE} announced blocks on a node in the other rack: ${ms(install)} (${((SCALE / install) * 1000).toFixed(0)} routes/s)`,
  );
  console.log(
    `  of which in BIRD's table ${BGP_KERNEL_TABLE} after ${inBirdTable ? ms(inBirdTable) : 'the same poll'}; the mirror into main (proto ${PEER_ROUTE_PROTO}) after ${ms(install)}`,
  );
  console.log(`node C route to the first block: ${installed}`);
  console.log(
    `withdraw a stopped node's ${aBlocks.length + SCALE} blocks from the other rack's node: ${ms(withdraw)}`,
  );
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  })
  .finally(() => {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
