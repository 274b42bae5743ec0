// The IPAM stress test: 20 simulated agents, each a real child process with its own node name,
// allocate and release concurrently against the real API server while random agents are SIGKILLed
// and restarted mid-flight. Each agent journals what it handed out and released (fsynced after the
// API confirmed). We check: at no moment does the API hold an address for two holders, the
// journals never show one address live for two pods at overlapping times, and after GC (with the
// journals' live set, grace 0) the IPBlocks hold exactly what the journals say is live.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import { API_VERSION, ClusterNetworkResource, IPBlockResource } from '../../src/api/group.ts';
import { BLOCK_POOL_LABEL, type IPBlock } from '../../src/api/ipam.ts';
import { containsIP, parseCidr, parseIP } from '../../src/ipam/cidr.ts';
import { createNodeIpam } from '../../src/ipam/index.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import { adminClient, eventually, kubeconfigPath, uniqueName } from '../support/kube.ts';
import type { JournalEntry } from './fixtures/ipam-agent.ts';

const AGENTS = 20;
const OPS_PER_AGENT = 150;
const NODE = resolve('node_modules/.bin/node');
const FIXTURE = resolve('test/integration/fixtures/ipam-agent.ts');

let kube: KubeClient;
let dir: string;

beforeAll(async () => {
  kube = await adminClient();
  await installCrds(kube);
  dir = mkdtempSync(join(tmpdir(), 'ipam-stress-'));
});

afterAll(async () => {
  await kube.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Agent {
  node: string;
  journal: string;
  proc?: ChildProcess;
  exited?: Promise<number | null>;
  done: boolean;
  kills: number;
  crashes: number;
}

function readJournal(path: string): JournalEntry[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as JournalEntry];
      } catch {
        return [];
      }
    });
}

describe('IPAM under 20 concurrent agents killed and restarted at random', () => {
  it(
    'never duplicates, never leaks past GC, and the IPBlocks match the journals',
    { timeout: 300_000 },
    async () => {
      const pool = `stress-${Math.random().toString(36).slice(2, 8)}`;
      const cn = uniqueName('stress');
      // 16 blocks of 16 for 20 nodes: some nodes must borrow, every block is contended for.
      await kube.create<ClusterNetwork>(ClusterNetworkResource, {
        apiVersion: API_VERSION,
        kind: 'ClusterNetwork',
        metadata: { name: cn },
        spec: { pools: [{ name: pool, cidr: '10.120.0.0/24', blockSize: 28 }], backend: { mode: 'vxlan' } },
      });

      const agents: Agent[] = Array.from({ length: AGENTS }, (_, i) => ({
        node: `stress-node-${i}`,
        journal: join(dir, `agent-${i}.jsonl`),
        done: false,
        kills: 0,
        crashes: 0,
      }));
      const start = (a: Agent): void => {
        const proc = spawn(
          NODE,
          [
            FIXTURE,
            '--node',
            a.node,
            '--cn',
            cn,
            '--journal',
            a.journal,
            '--ops',
            String(OPS_PER_AGENT),
            '--max-live',
            '8',
            '--workers',
            '2',
          ],
          {
            env: { ...process.env, KUBECONFIG: kubeconfigPath(), TRELLIS_LOG_LEVEL: 'warn' },
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
        let stderr = '';
        proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
        a.proc = proc;
        a.exited = new Promise((res) =>
          proc.on('exit', (code, signal) => {
            if (code === 0) a.done = true;
            else if (signal !== 'SIGKILL') {
              a.crashes++;
              process.stderr.write(`agent ${a.node} exited ${code ?? signal}: ${stderr}\n`);
            }
            res(code);
          }),
        );
      };
      agents.forEach(start);

      // Chaos: SIGKILL a random running agent every 0.5-1.5 s and restart it at once.
      let chaos = true;
      let kills = 0;
      const chaosLoop = (async () => {
        while (chaos) {
          await sleep(500 + Math.random() * 1000);
          const running = agents.filter((a) => !a.done && a.proc && a.proc.exitCode === null);
          if (running.length === 0) continue;
          const victim = running[Math.floor(Math.random() * running.length)]!;
          victim.proc!.kill('SIGKILL');
          await victim.exited;
          victim.kills++;
          kills++;
          if (!victim.done) start(victim);
        }
      })();
      // Crashed (not killed) agents are restarted too, and counted.
      const crashWatch = (async () => {
        while (chaos) {
          await sleep(200);
          for (const a of agents)
            if (!a.done && a.proc && a.proc.exitCode !== null && a.proc.signalCode === null) start(a);
        }
      })();

      // Books at every moment we look: every address inside the block that records it, no two
      // blocks of the pool covering the same addresses (so no address can be in two blocks), and no
      // holder with two addresses.
      const violations: string[] = [];
      let polls = 0;
      const pollLoop = (async () => {
        while (chaos) {
          const blocks = (
            await kube.listAll<IPBlock>(IPBlockResource, undefined, {
              labelSelector: `${BLOCK_POOL_LABEL}=${pool}`,
            })
          ).items;
          const byHolder = new Map<string, string>();
          const byCidr = new Map<string, string>();
          for (const b of blocks) {
            const cidr = parseCidr(b.spec!.cidr);
            const key = `${cidr.base}/${cidr.prefix}`;
            if (byCidr.has(key))
              violations.push(`${b.spec!.cidr} claimed twice (${byCidr.get(key)} and ${b.metadata.name})`);
            byCidr.set(key, b.metadata.name);
            for (const [ip, a] of Object.entries(b.spec?.allocations ?? {})) {
              const { family, value } = parseIP(ip);
              if (!containsIP(cidr, family, value))
                violations.push(
                  `${ip} recorded in block ${b.metadata.name} (${b.spec!.cidr}) outside its range`,
                );
              const h = `${a.containerID}/${a.interface}`;
              if (byHolder.has(h)) violations.push(`${h} holds ${byHolder.get(h)} and ${ip}`);
              byHolder.set(h, ip);
            }
          }
          polls++;
          await sleep(300);
        }
      })();

      await eventually(
        async () => agents.every((a) => a.done),
        'every agent to finish its operations',
        240_000,
        500,
      ).catch((err: unknown) => {
        const progress = agents.map(
          (a) => `${a.node}: ${readJournal(a.journal).length} entries, ${a.kills} kills, done=${a.done}`,
        );
        throw new Error(`${String(err)}\n${progress.join('\n')}`);
      });
      chaos = false;
      await Promise.all([chaosLoop, crashWatch, pollLoop]);

      const journals = agents.map((a) => ({ node: a.node, entries: readJournal(a.journal) }));
      const ops = journals.reduce(
        (n, j) => n + j.entries.filter((e) => e.t === 'alloc' || e.t === 'rel-done' || e.t === 'fail').length,
        0,
      );
      const allocs = journals.reduce((n, j) => n + j.entries.filter((e) => e.t === 'alloc').length, 0);
      const fails = journals.flatMap((j) => j.entries.filter((e) => e.t === 'fail'));

      // Journals over the whole run: an address is live for one pod at a time.
      const intervals = new Map<string, { cid: string; from: number; to: number }[]>();
      const liveFromJournals = new Map<string, { cid: string; node: string }>();
      for (const j of journals) {
        const open = new Map<string, { ips: string[]; from: number }>();
        for (const e of j.entries) {
          if (e.t === 'alloc') open.set(e.cid, { ips: e.ips, from: e.ts });
          if (e.t === 'rel-start' && open.has(e.cid)) {
            const o = open.get(e.cid)!;
            for (const ip of o.ips)
              intervals.set(ip, [...(intervals.get(ip) ?? []), { cid: e.cid, from: o.from, to: e.ts }]);
            open.delete(e.cid);
          }
        }
        for (const [cid, o] of open) {
          for (const ip of o.ips) {
            intervals.set(ip, [...(intervals.get(ip) ?? []), { cid, from: o.from, to: Infinity }]);
            liveFromJournals.set(ip, { cid, node: j.node });
          }
        }
      }
      const duplicates: string[] = [];
      for (const [ip, list] of intervals) {
        list.sort((a, b) => a.from - b.from);
        for (let i = 1; i < list.length; i++) {
          if (list[i]!.from < list[i - 1]!.to)
            duplicates.push(`${ip}: ${list[i - 1]!.cid} and ${list[i]!.cid}`);
        }
      }

      const crHolders = async (): Promise<Map<string, string>> => {
        const blocks = (
          await kube.listAll<IPBlock>(IPBlockResource, undefined, {
            labelSelector: `${BLOCK_POOL_LABEL}=${pool}`,
          })
        ).items;
        return new Map(
          blocks.flatMap((b) =>
            Object.entries(b.spec?.allocations ?? {}).map(([ip, a]) => [ip, a.containerID] as const),
          ),
        );
      };
      // No duplicates: not in the books at any poll, not in the journals over the whole run.
      expect(violations).toEqual([]);
      expect(duplicates).toEqual([]);

      const beforeGc = await crHolders();
      // Everything the journals say is live is in the books, held by that pod.
      for (const [ip, { cid }] of liveFromJournals) expect(beforeGc.get(ip), `${ip} for ${cid}`).toBe(cid);
      const leakedBeforeGc = beforeGc.size - liveFromJournals.size;

      // GC on every node with the journals' live set and grace 0: the books equal the journals.
      let collected = 0;
      for (const j of journals) {
        const valid = [...liveFromJournals.values()]
          .filter((v) => v.node === j.node)
          .map((v) => ({ containerID: v.cid, interface: 'eth0' }));
        const ipam = createNodeIpam({ kube, node: j.node, clusterNetwork: cn, events: false });
        collected += await ipam.gc(valid, 0);
      }
      const afterGc = await crHolders();
      expect(Object.fromEntries(afterGc)).toEqual(
        Object.fromEntries([...liveFromJournals].map(([ip, v]) => [ip, v.cid])),
      );

      const totalKills = agents.reduce((n, a) => n + a.kills, 0);
      process.stderr.write(
        `ipam stress: ${ops} operations (${allocs} allocations, ${fails.length} refused) by ${AGENTS} agents, ` +
          `${totalKills} SIGKILLs, ${agents.reduce((n, a) => n + a.crashes, 0)} crashes, ${polls} book checks, ` +
          `${leakedBeforeGc} leaked by kills and ${collected} collected by GC, ${afterGc.size} live at the end\n`,
      );
      expect(ops).toBeGreaterThanOrEqual(AGENTS * OPS_PER_AGENT);
      expect(totalKills).toBeGreaterThanOrEqual(10);
      expect(collected).toBe(leakedBeforeGc);
      expect(agents.reduce((n, a) => n + a.crashes, 0)).toBe(0);
      expect(kills).toBe(totalKills);
    },
  );
});
