// Fuzz test of the CNI surface: over 10,000 generated requests, seeded so a failure replays,
// against a real agent (most straight to its socket, where a malformed request is cheap) and a
// sample through the compiled plugin executable with odd CNI_* environments. Valid and malformed
// stdin, huge input, wrong types, hostile strings (shell, heredoc, iproute2 batch syntax) in every
// field, paths that are not namespaces, every verb. Each request must end within a bound in spec
// error JSON or success; the agent must not crash; no hostile command may run; and afterwards the
// node has no stray link, route, address or file, and IPAM holds nothing it did not hold before.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { IPBlockResource } from '../../src/api/group.ts';
import type { IPBlock } from '../../src/api/ipam.ts';
import { useAgentHarness } from '../support/agent-harness.ts';
import { askSocket, cni, pluginConf, podArgs, PREFIX, SHIM, sh } from './fixtures/cni-harness.ts';

const SEED = Number(process.env.TRELLIS_FUZZ_SEED ?? 20261129);
const SOCKET_REQUESTS = 10_000;
const PLUGIN_REQUESTS = 600;
/** Longest any one request may take before it counts as a hang. */
const BOUND_MS = 30_000;
const NETNS = ['tcv-fz0', 'tcv-fz1', 'tcv-fz2'];
const SOCKET_LANES = 24;
/** One namespace per socket lane for its well-formed ADD/DEL pairs (one pod at a time in each). */
const VALID_NETNS = Array.from({ length: SOCKET_LANES }, (_, i) => `tcv-fzv${i}`);
const h = useAgentHarness({ name: 'tcv-fuzz', v4: '10.250.64.0/20', v6: 'fd00:250::4:0/112' });
const { scratch } = h;
const MARK = join(scratch, 'ran');

/** mulberry32: small, seeded, good enough to spread choices. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = rng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const chance = (p: number): boolean => rand() < p;

/** Strings that would do harm if any layer pasted them into shell, heredoc or batch text. */
const HOSTILE = [
  '',
  ' ',
  '\n',
  '\t',
  `$(touch ${MARK}-1)`,
  `\`touch ${MARK}-2\``,
  `; touch ${MARK}-3`,
  `1450\nTRELLIS_POD\ntouch ${MARK}-4\ncat <<'TRELLIS_POD'`,
  `eth0\nTRELLIS_HOST\ntouch ${MARK}-5\n#`,
  `x' ; touch ${MARK}-6 ; '`,
  'eth0\nlink del lo',
  'lo',
  'up',
  'eth0 up',
  'e#0',
  '.',
  '..',
  '/',
  '../../../../etc/passwd',
  'eth0:1',
  'a'.repeat(16),
  'a'.repeat(5000),
  '\u202eeth0',
  'é',
  '%s%n%x',
  '-1',
  'NaN',
  '{}',
  'null',
  '0.0.0.0/0',
  '::/0',
  '10.250.64.1',
  'ff:ff:ff:ff:ff:ff',
];
const WRONG_TYPES: unknown[] = [0, -1, 1.5, 1e300, true, false, null, [], {}, ['x'], { a: 1 }];
const VERBS = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];
const NOT_NETNS = [
  '/etc/passwd',
  '/',
  '/dev/null',
  '/proc/self/ns/mnt',
  '/run/netns/tcv-fz-missing',
  'relative',
];

function anyValue(valid: () => unknown): unknown {
  const r = rand();
  if (r < 0.45) return valid();
  if (r < 0.8) return pick(HOSTILE);
  if (r < 0.95) return pick(WRONG_TYPES);
  return undefined;
}

let nextID = 0;
function containerID(): string {
  return `fz-x-${nextID++}`;
}

function fuzzEnv(): Record<string, unknown> {
  const env: Record<string, unknown> = {};
  env.CNI_COMMAND = chance(0.9) ? pick(VERBS) : anyValue(() => 'ADD');
  const put = (k: string, v: () => unknown): void => {
    const value = anyValue(v);
    if (value !== undefined) env[k] = value;
  };
  put('CNI_CONTAINERID', containerID);
  put('CNI_NETNS', () => (chance(0.6) ? `/run/netns/${pick(NETNS)}` : pick(NOT_NETNS)));
  put('CNI_IFNAME', () => pick(['eth0', 'net1', 'eth1']));
  put('CNI_ARGS', () =>
    chance(0.7)
      ? podArgs('default', `fz-${nextID}`)
      : `K8S_POD_NAME=${pick(HOSTILE)};K8S_POD_NAMESPACE=default`,
  );
  put('CNI_PATH', () => '/opt/cni/bin');
  return env;
}

function fuzzConfig(command: unknown): Record<string, unknown> {
  const conf: Record<string, unknown> = {};
  const put = (k: string, v: () => unknown, p = 1): void => {
    if (!chance(p)) return;
    const value = anyValue(v);
    if (value !== undefined) conf[k] = value;
  };
  put('cniVersion', () => pick(['1.1.0', '1.0.0', '0.4.0', '0.3.1', '9.9.9', '']));
  put('name', () => pick(['trellis', 'other-net', 'fz-net']));
  put('type', () => pick(['trellis', 'macvlan']));
  put('socket', () => h.agent.socket, 0.2);
  put('mtu', () => pick([1450, 1500, 9000, 68, 67, 65536]));
  put('clusterNetwork', () => h.net.clusterNetwork, 0.5);
  put('timeoutSeconds', () => pick([0, 5, 110, 111]), 0.1);
  put(
    'ipam',
    () => ({ type: 'trellis', pool: pick(['att', 'A B', HOSTILE[4]!]), routes: [{ dst: pick(HOSTILE) }] }),
    0.3,
  );
  put(
    'runtimeConfig',
    () => ({ ips: [pick(['10.250.64.9', '10.99.0.1', 'fd00:250::4:9', ...HOSTILE])] }),
    0.3,
  );
  put(
    'prevResult',
    () => ({
      cniVersion: '1.0.0',
      interfaces: [{ name: pick(HOSTILE), mac: pick(['0a:00:00:00:00:01', 'zz']), sandbox: pick(HOSTILE) }],
      ips: [{ address: pick(['10.250.64.9/32', ...HOSTILE]), interface: pick([0, 1, -1, 'x']) }],
      routes: [{ dst: pick(['0.0.0.0/0', ...HOSTILE]), gw: pick(['169.254.1.1', ...HOSTILE]) }],
    }),
    0.3,
  );
  put(
    'cni.dev/valid-attachments',
    () => [{ containerID: pick(['fz-ok-0', ...HOSTILE]), ifname: pick(['eth0', ...HOSTILE]) }],
    command === 'GC' ? 0.9 : 0.1,
  );
  // A well-formed GC of this very network would rightly remove the valid attachments the test
  // makes at the same time: keep fuzzed GC to other networks or malformed lists.
  if (command === 'GC' && conf.name === 'trellis') conf.name = 'other-net';
  return conf;
}

type Outcome = { kind: 'ok' } | { kind: 'error'; code: number } | { kind: 'bad'; why: string };

function judgeStdout(exit: number, stdout: string): Outcome {
  if (exit === 0) {
    if (stdout.trim() === '') return { kind: 'ok' };
    try {
      const j = JSON.parse(stdout) as { cniVersion?: unknown };
      return typeof j.cniVersion === 'string'
        ? { kind: 'ok' }
        : { kind: 'bad', why: `success without cniVersion: ${stdout.slice(0, 200)}` };
    } catch {
      return { kind: 'bad', why: `success with non-JSON stdout: ${stdout.slice(0, 200)}` };
    }
  }
  if (exit !== 1) return { kind: 'bad', why: `exit ${exit}: ${stdout.slice(0, 200)}` };
  try {
    const j = JSON.parse(stdout) as { code?: unknown; msg?: unknown; cniVersion?: unknown };
    if (typeof j.code !== 'number' || typeof j.msg !== 'string' || typeof j.cniVersion !== 'string')
      return { kind: 'bad', why: `error JSON without code/msg/cniVersion: ${stdout.slice(0, 200)}` };
    return { kind: 'error', code: j.code };
  } catch {
    return { kind: 'bad', why: `error with non-JSON stdout: ${stdout.slice(0, 200)}` };
  }
}

function bounded<T>(p: Promise<T>, what: string): Promise<T | Outcome> {
  return Promise.race([
    p,
    new Promise<Outcome>((r) =>
      setTimeout(() => r({ kind: 'bad', why: `no answer within ${BOUND_MS} ms: ${what}` }), BOUND_MS).unref(),
    ),
  ]);
}

/** One request on the agent socket: the wire answer is a status line and the plugin's stdout. */
function askAgent(body: string): Promise<Outcome> {
  return askSocket(h.agent.socket, body).then(
    (text) => {
      const nl = text.indexOf('\n');
      const head = nl < 0 ? text : text.slice(0, nl);
      if (head !== '0' && head !== '1')
        return { kind: 'bad', why: `malformed answer ${JSON.stringify(text.slice(0, 80))}` };
      return judgeStdout(Number(head), nl < 0 ? '' : text.slice(nl + 1));
    },
    (err: unknown) => ({ kind: 'bad', why: `socket error ${(err as Error).message}` }),
  );
}

function runExe(env: Record<string, string>, stdin: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(SHIM, [], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', (e) => resolve({ kind: 'bad', why: `spawn ${e.message}` }));
    child.on('close', (code, signal) => {
      if (signal) resolve({ kind: 'bad', why: `plugin killed by ${signal}` });
      else resolve(judgeStdout(code ?? -1, Buffer.concat(out).toString('utf8')));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

function rawBody(): string {
  const r = rand();
  if (r < 0.2) return '';
  if (r < 0.4)
    return pick([
      '[]',
      '1',
      'null',
      '"x"',
      '{',
      '{"env":',
      '{"env":null,"config":null}',
      '{"env":[],"config":"x"}',
    ]);
  if (r < 0.5)
    return `{"env":{"CNI_COMMAND":"STATUS"},"config":{"cniVersion":"1.1.0","pad":"${'x'.repeat(2 << 20)}"}}`;
  return Buffer.from(
    Array.from({ length: Math.floor(rand() * 512) }, () => Math.floor(rand() * 256)),
  ).toString('latin1');
}

async function pool<T>(
  items: T[],
  width: number,
  fn: (item: T, lane: number) => Promise<void>,
): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: width }, async (_, lane) => {
      while (i < items.length) await fn(items[i++]!, lane);
    }),
  );
}

interface Snapshot {
  links: string;
  routes: string;
  addrs: string;
  podLinks: string[];
  files: string[];
  allocations: string[];
}

async function snapshot(): Promise<Snapshot> {
  const blocks = await h.kube.listAll<IPBlock>(IPBlockResource);
  const lines = (cmd: string[]): string =>
    sh('ip', cmd)
      .split('\n')
      .map((l) => l.replace(/\s+/g, ' ').trim())
      .filter(Boolean)
      .sort()
      .join('\n');
  return {
    links: lines(['-o', 'link', 'show'])
      .replace(/ state \S+/g, '')
      .replace(/ qlen \d+/g, ''),
    // Routes of blocks this node claimed stay by design (block affinity, not an attachment).
    routes: [lines(['-4', 'route', 'show', 'table', 'all']), lines(['-6', 'route', 'show', 'table', 'all'])]
      .join('\n')
      .split('\n')
      .filter((l) => !l.includes('proto 221') && !/expires/.test(l))
      .join('\n'),
    addrs: lines(['-o', 'addr', 'show']).replace(/ valid_lft \S+ preferred_lft \S+/g, ''),
    podLinks: [...NETNS, ...VALID_NETNS].map((ns) =>
      sh('ip', ['-n', ns, '-o', 'link', 'show'])
        .replace(/ state \S+/g, '')
        .trim(),
    ),
    files: [
      ...readdirSync(scratch),
      ...readdirSync(join(h.agent.dir, 'run')),
      ...(existsSync(join(h.agent.dir, 'state'))
        ? readdirSync(join(h.agent.dir, 'state'), { recursive: true }).map(String)
        : []),
    ].sort(),
    allocations: blocks.items
      .flatMap((b) => Object.entries(b.spec?.allocations ?? {}).map(([ip, a]) => `${ip} ${a.containerID}`))
      .sort(),
  };
}

beforeAll(() => {
  for (const ns of [...NETNS, ...VALID_NETNS]) {
    h.netns(ns);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  writeFileSync(join(scratch, 'not-a-netns'), '');
});

it(`${SOCKET_REQUESTS + PLUGIN_REQUESTS} generated requests end in spec JSON or success, and leave the node as it was`, async () => {
  // Warm up: one attachment made and removed, so this node's blocks exist before the baseline.
  const conf = pluginConf(h.agent, h.net, '1.1.0');
  const warm = await cni({
    command: 'ADD',
    containerID: 'fz-ok-warm',
    netns: `/run/netns/${NETNS[0]}`,
    args: podArgs('default', 'fz-ok-warm'),
    config: conf,
  });
  expect(warm.code, warm.stdout).toBe(0);
  expect((await cni({ command: 'DEL', containerID: 'fz-ok-warm', config: conf })).code).toBe(0);
  // The agent's own vxlan device may still be getting its IPv6 link-local address from the
  // kernel (addrconf): let that settle so the baseline is the node as the agent leaves it.
  for (let i = 0; i < 50; i++) {
    const ll = sh('ip', ['-6', '-o', 'addr', 'show', 'dev', `${PREFIX}.vxlan`, 'scope', 'link']);
    if (ll.includes('fe80') && !ll.includes('tentative')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const before = await snapshot();

  const counts = new Map<string, number>();
  const bad: string[] = [];
  const attached: { id: string; ifname: string }[] = [];
  const count = (lane: string, o: Outcome | unknown): void => {
    const out = o as Outcome;
    const key = `${lane} ${out.kind === 'error' ? `error ${out.code}` : out.kind}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (out.kind === 'bad') bad.push(`${lane}: ${out.why}`);
  };
  const started = performance.now();

  // Lane 1: straight to the agent socket. 1 in 10 is raw bytes, 1 in 20 a well-formed ADD and DEL.
  const socketJobs = Array.from({ length: SOCKET_REQUESTS }, (_, i) => i);
  const socketLane = pool(socketJobs, SOCKET_LANES, async (i, lane) => {
    if (i % 20 === 0) {
      const id = `fz-ok-${i}`;
      const env = {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: id,
        CNI_NETNS: `/run/netns/${VALID_NETNS[lane]!}`,
        CNI_IFNAME: 'eth0',
        CNI_ARGS: podArgs('default', id),
      };
      const add = await bounded(
        askAgent(JSON.stringify({ env, config: conf, mode: 'plugin' })),
        `valid ADD ${id}`,
      );
      count('socket valid-add', add);
      if ((add as Outcome).kind !== 'ok') return;
      const del = await bounded(
        askAgent(JSON.stringify({ env: { ...env, CNI_COMMAND: 'DEL' }, config: conf, mode: 'plugin' })),
        `DEL ${id}`,
      );
      count('socket valid-del', del);
      return;
    }
    const body =
      i % 10 === 1
        ? rawBody()
        : (() => {
            const env = fuzzEnv();
            const req = {
              env,
              config: fuzzConfig(env.CNI_COMMAND),
              mode: chance(0.9) ? pick(['plugin', 'ipam']) : pick(HOSTILE),
            };
            return JSON.stringify(req);
          })();
    const o = await bounded(askAgent(body), body.slice(0, 200));
    count('socket', o);
    if ((o as Outcome).kind === 'ok') {
      const req = (() => {
        try {
          return JSON.parse(body) as { env?: Record<string, unknown> };
        } catch {
          return {};
        }
      })();
      if (req.env?.CNI_COMMAND === 'ADD')
        attached.push({ id: String(req.env.CNI_CONTAINERID), ifname: String(req.env.CNI_IFNAME) });
    }
  });

  // Lane 2: through the compiled plugin, with odd environments and stdin.
  const exeLane = pool(
    Array.from({ length: PLUGIN_REQUESTS }, (_, i) => i),
    6,
    async (i) => {
      const fe = fuzzEnv();
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(fe)) {
        if (v === undefined) continue;
        // The kernel takes no NUL in an environment string; a runtime cannot send one.
        env[k] = String(typeof v === 'string' ? v : JSON.stringify(v)).replace(/\0/g, '');
      }
      if (chance(0.1))
        env[pick(['CNI_UNKNOWN', 'CNI_COMMAND_X', 'cni_command'])] = pick(HOSTILE).replace(/\0/g, '');
      if (chance(0.1)) delete env.CNI_COMMAND;
      const conf2 = { ...fuzzConfig(fe.CNI_COMMAND), socket: h.agent.socket };
      const stdin = i % 15 === 0 ? rawBody() : JSON.stringify(conf2);
      const o = await bounded(runExe(env, stdin), `plugin ${JSON.stringify(env).slice(0, 200)}`);
      count('plugin', o);
      if ((o as Outcome).kind === 'ok' && env.CNI_COMMAND === 'ADD' && env.CNI_CONTAINERID)
        attached.push({ id: env.CNI_CONTAINERID, ifname: env.CNI_IFNAME ?? '' });
    },
  );
  await Promise.all([socketLane, exeLane]);
  const seconds = (performance.now() - started) / 1000;

  // Remove what the fuzz legitimately attached (a random request can be fully valid).
  for (const a of attached)
    await askAgent(
      JSON.stringify({
        env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: a.id, CNI_IFNAME: a.ifname },
        config: conf,
        mode: 'plugin',
      }),
    );

  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const table = [...counts.entries()].sort().map(([k, v]) => `  ${k.padEnd(28)} ${v}`);
  console.log(
    `CNI fuzz (seed ${SEED}): ${total} requests in ${seconds.toFixed(1)} s\n${table.join('\n')}\n  fuzz ADDs that succeeded: ${attached.length}`,
  );

  expect(bad, bad.slice(0, 10).join('\n')).toEqual([]);
  expect(total).toBeGreaterThanOrEqual(SOCKET_REQUESTS + PLUGIN_REQUESTS);
  // Every well-formed ADD (one pod at a time per namespace) succeeded, and its DEL too.
  expect(counts.get('socket valid-add ok')).toBe(SOCKET_REQUESTS / 20);
  expect(counts.get('socket valid-del ok')).toBe(SOCKET_REQUESTS / 20);
  expect(h.agent.proc.exitCode, 'the agent exited').toBeNull();
  expect(h.agent.log()).not.toContain('handler crashed');
  expect(
    readdirSync(scratch).filter((f) => f.startsWith('ran')),
    'a hostile command ran',
  ).toEqual([]);
  expect(existsSync(`${MARK}-4`)).toBe(false);

  const after = await snapshot();
  expect(after.allocations, 'IPAM changed').toEqual(before.allocations);
  expect(after.links, 'stray links').toBe(before.links);
  expect(after.routes, 'stray routes').toBe(before.routes);
  expect(after.addrs, 'stray addresses').toBe(before.addrs);
  expect(after.podLinks, 'partial attachments in the pod namespaces').toEqual(before.podLinks);
  expect(after.files, 'stray files').toEqual(before.files);
  expect(
    sh('ip', ['-o', 'link', 'show'])
      .split('\n')
      .filter((l) => l.includes(`${PREFIX}`) && /tcv[0-9a-f]{12}/.test(l)),
  ).toEqual([]);
}, 600_000);
