// IPAM features against the real kube-apiserver: dual-stack and IPv6 allocation recorded in
// IPBlocks, idempotent ADD/DEL, borrowing, exhaustion with its error and Pod Event, static IPs,
// GC, and the operator reclaiming a deleted node's blocks.
import { register } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNetwork, ClusterNetworkSpec } from '../../src/api/clusternetwork.ts';
import { API_VERSION, ClusterNetworkResource, IPBlockResource } from '../../src/api/group.ts';
import { BLOCK_NODE_LABEL, BLOCK_POOL_LABEL, type IPBlock } from '../../src/api/ipam.ts';
import { parseCidr, contains } from '../../src/ipam/cidr.ts';
import {
  createNodeIpam,
  ipamShow,
  PoolExhaustedError,
  reclaimOrphanBlocks,
  StaticIPConflictError,
  StaticIPNotAllowedError,
  StaticIPOutOfPoolError,
  StaticIPUnclaimedBlockError,
  summarizePoolUsage,
  UnknownPoolError,
} from '../../src/ipam/index.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import { createInformer } from '../../src/kube/informer.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { adminClient, eventually, uniqueName } from '../support/kube.ts';

let kube: KubeClient;
let ns: string;

beforeAll(async () => {
  kube = await adminClient();
  await installCrds(kube);
  ns = uniqueName('ipam');
  await kube.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  // No controller-manager here: create the ServiceAccount pods need to pass admission.
  await kube.create(Builtin.ServiceAccount, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'default', namespace: ns },
  });
});

afterAll(async () => {
  await kube.delete(Builtin.Namespace, ns);
  await kube.close();
});

async function clusterNetwork(
  pools: ClusterNetworkSpec['pools'],
  attachments?: ClusterNetworkSpec['attachments'],
): Promise<string> {
  const name = uniqueName('cn');
  const cn: ClusterNetwork = {
    apiVersion: API_VERSION,
    kind: 'ClusterNetwork',
    metadata: { name },
    spec: { pools, backend: { mode: 'vxlan' }, ...(attachments ? { attachments } : {}) },
  };
  await kube.create(ClusterNetworkResource, cn);
  return name;
}

/** A short pool name unique to this run (pool names are DNS labels and key the block names). */
function poolName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

async function blocksOf(pool: string): Promise<IPBlock[]> {
  return (
    await kube.listAll<IPBlock>(IPBlockResource, undefined, { labelSelector: `${BLOCK_POOL_LABEL}=${pool}` })
  ).items;
}

async function createPod(name: string): Promise<KubeObject> {
  return kube.create(Builtin.Pod, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'example.invalid/none' }] },
  });
}

async function allocationsCounted(pool: string): Promise<number> {
  const m = await register.getSingleMetric('trellis_ipam_allocations_total')?.get();
  return m?.values.find((v) => v.labels.pool === pool)?.value ?? 0;
}

function req(pod: string, extra: Partial<{ pools: string[]; staticIPs: string[]; interface: string }> = {}) {
  return { namespace: ns, pod, containerID: `cid-${pod}`, interface: extra.interface ?? 'eth0', ...extra };
}

describe('IPAM backed by IPBlocks', () => {
  it('gives a dual-stack pod one IPv4 and one IPv6 address, recorded and attributable in IPBlocks', async () => {
    const v4 = poolName('v4');
    const v6 = poolName('v6');
    const cn = await clusterNetwork([
      { name: v4, cidr: '10.100.0.0/24', blockSize: 28 },
      { name: v6, cidr: 'fd00:100::/120', blockSize: 124 },
    ]);
    const ipam = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    const got = await ipam.allocate(req('web-1'));
    expect(got.map((g) => [g.family, g.pool])).toEqual([
      [4, v4],
      [6, v6],
    ]);
    expect(contains(parseCidr('10.100.0.0/24'), got[0]!.ip)).toBe(true);
    expect(contains(parseCidr('fd00:100::/120'), got[1]!.ip)).toBe(true);
    expect(got[0]!.prefixLength).toBe(24);
    expect(got[1]!.prefixLength).toBe(120);

    for (const [pool, ip] of [
      [v4, got[0]!.ip],
      [v6, got[1]!.ip],
    ] as const) {
      const blocks = await blocksOf(pool);
      expect(blocks).toHaveLength(1);
      const b = blocks[0]!;
      expect(b.metadata.labels?.[BLOCK_NODE_LABEL]).toBe('node-a');
      expect(b.spec?.node).toBe('node-a');
      expect(b.spec?.used).toBe(1);
      expect(b.spec?.allocations[ip]).toMatchObject({
        namespace: ns,
        pod: 'web-1',
        containerID: 'cid-web-1',
        interface: 'eth0',
        node: 'node-a',
      });
    }

    // ADD again for the same container+interface: the same addresses, nothing new taken.
    expect(await ipam.allocate(req('web-1'))).toEqual(got);
    expect(await ipam.lookup({ containerID: 'cid-web-1', interface: 'eth0' })).toEqual(got);
    // A fresh allocator (a restarted agent) finds them from the API alone.
    const restarted = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    expect(await restarted.allocate(req('web-1'))).toEqual(got);

    expect(await restarted.release({ containerID: 'cid-web-1', interface: 'eth0' })).toBe(2);
    expect(await restarted.release({ containerID: 'cid-web-1', interface: 'eth0' })).toBe(0);
    expect((await blocksOf(v4))[0]!.spec?.allocations).toEqual({});

    const text = await ipamShow(kube, { json: false });
    expect(text).toContain(v4);
    const json = JSON.parse(await ipamShow(kube, { json: true })) as { pools: { name: string }[] };
    expect(json.pools.map((p) => p.name)).toEqual(expect.arrayContaining([v4, v6]));
  });

  it('is all or nothing for dual-stack: an exhausted IPv4 pool gives back the IPv6 address', async () => {
    const v4 = poolName('v4s');
    const v6 = poolName('v6s');
    // A /30 has two usable addresses.
    const cn = await clusterNetwork([
      { name: v4, cidr: '10.109.0.0/30', blockSize: 30 },
      { name: v6, cidr: 'fd00:109::/120', blockSize: 124 },
    ]);
    const ipam = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    await ipam.allocate(req('ds-1'));
    await ipam.allocate(req('ds-2'));
    const err = await ipam.allocate(req('ds-3')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect((err as Error).message).toContain(`IP pool ${v4}`);
    const v6held = (await blocksOf(v6)).flatMap((b) => Object.values(b.spec!.allocations).map((a) => a.pod));
    expect(v6held.sort()).toEqual(['ds-1', 'ds-2']);
    expect(await ipam.lookup({ containerID: 'cid-ds-3', interface: 'eth0' })).toEqual([]);
  });

  it('allocates IPv6-only pods across blocks claimed by their node, all distinct', async () => {
    const v6 = poolName('v6only');
    const cn = await clusterNetwork([{ name: v6, cidr: 'fd00:200::/64', blockSize: 124 }]);
    const a = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    const b = createNodeIpam({ kube, node: 'node-b', clusterNetwork: cn });
    const ips = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).allocate(req(`v6-${i}`))),
    );
    const flat = ips.flat();
    expect(flat.every((x) => x.family === 6 && x.pool === v6)).toBe(true);
    expect(new Set(flat.map((x) => x.ip)).size).toBe(40);
    const blocks = await blocksOf(v6);
    // 16 addresses per /124 block: 20 pods per node need two blocks each, owned by that node.
    expect(blocks.filter((x) => x.spec?.node === 'node-a')).toHaveLength(2);
    expect(blocks.filter((x) => x.spec?.node === 'node-b')).toHaveLength(2);
    for (const blk of blocks) {
      for (const a of Object.values(blk.spec!.allocations)) expect(a.node).toBe(blk.spec!.node);
    }
  });

  it('borrows when every block is claimed, then refuses with an error naming the pool and an Event on the Pod', async () => {
    const pool = poolName('tiny');
    // /28 in /29 blocks: two blocks, 14 usable addresses (network and broadcast never handed out).
    const cn = await clusterNetwork([{ name: pool, cidr: '10.101.0.0/28', blockSize: 29 }]);
    const a = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    const b = createNodeIpam({ kube, node: 'node-b', clusterNetwork: cn });
    const c = createNodeIpam({ kube, node: 'node-c', clusterNetwork: cn });
    await a.allocate(req('a-0'));
    await b.allocate(req('b-0'));
    const borrowed = await c.allocate(req('c-0'));
    const holderBlock = (await blocksOf(pool)).find((x) => x.spec?.allocations[borrowed[0]!.ip]);
    expect(holderBlock?.spec?.node).not.toBe('node-c');
    expect(holderBlock?.spec?.allocations[borrowed[0]!.ip]?.node).toBe('node-c');
    expect(await ipamShow(kube, { json: false })).toMatch(
      new RegExp(
        `${borrowed[0]!.ip.replace(/\./g, '\\.')}\\s+${ns}/c-0 eth0 cid-c-0 \\(borrowed by node-c\\)`,
      ),
    );

    for (let i = 1; i < 12; i++) await [a, b, c][i % 3]!.allocate(req(`fill-${i}`));
    const all = (await blocksOf(pool)).flatMap((x) => Object.keys(x.spec!.allocations));
    expect(all).toHaveLength(14);
    expect(new Set(all).size).toBe(14);
    expect(all).not.toContain('10.101.0.0');
    expect(all).not.toContain('10.101.0.15');

    await createPod('starved');
    const err = await c.allocate(req('starved')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect((err as Error).message).toContain(`IP pool ${pool} (10.101.0.0/28) is exhausted`);
    const event = await eventually(async () => {
      const events = await kube.list<
        KubeObject & { reason?: string; message?: string; involvedObject?: { name: string; kind: string } }
      >(Builtin.Event, ns);
      return events.items.find(
        (e) => e.involvedObject?.name === 'starved' && e.reason === 'IPAllocationFailed',
      );
    }, 'the IPAllocationFailed event on the pod');
    expect(event.involvedObject?.kind).toBe('Pod');
    expect(event.message).toContain(pool);

    // Usage for ClusterNetwork status counts it all.
    const cnObj = await kube.get<ClusterNetwork>(ClusterNetworkResource, cn);
    expect(summarizePoolUsage(cnObj, await blocksOf(pool))).toEqual([
      { name: pool, cidr: '10.101.0.0/28', capacity: 14, allocated: 14, blocks: 2 },
    ]);
  });

  it('honours a static IP where the ClusterNetwork allows it, never gives it to another pod while held, and refuses one outside the pools', async () => {
    const pool = poolName('static');
    const cn = await clusterNetwork([
      { name: pool, cidr: '10.102.0.0/24', blockSize: 28, staticAddresses: { namespaces: [ns] } },
    ]);
    const a = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    const b = createNodeIpam({ kube, node: 'node-b', clusterNetwork: cn });
    // node a holds a block once it has allocated; statics are served from held blocks only
    const [first] = await a.allocate(req('first'));
    const held = parseCidr(first!.block);
    const inHeld = (n: number) => `10.102.0.${Number(held.base & 255n) + n}`;
    const s1 = inHeld(10);
    const s2 = inHeld(11);

    const got = await a.allocate(req('db-0', { staticIPs: [s1] }));
    expect(got.map((x) => x.ip)).toEqual([s1]);
    const blk = (await blocksOf(pool)).find((x) => x.spec?.cidr === first!.block);
    expect(blk?.spec?.allocations[s1]).toMatchObject({ pod: 'db-0', static: true });

    const conflict = await b.allocate(req('db-1', { staticIPs: [s1] })).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(StaticIPConflictError);
    expect((conflict as Error).message).toContain(`static IP ${s1} is already held by pod ${ns}/db-0`);

    const outside = await b.allocate(req('db-2', { staticIPs: ['10.199.0.1'] })).catch((e: unknown) => e);
    expect(outside).toBeInstanceOf(StaticIPOutOfPoolError);
    expect((outside as Error).message).toContain(
      `static IP 10.199.0.1 is not a usable address of any requested pool (${pool} 10.102.0.0/24)`,
    );

    // A static IP inside another node's block is written into that block (borrowed).
    const other = await b.allocate(req('db-3', { staticIPs: [s2] }));
    expect(other[0]!.block).toBe(first!.block);

    // Node a's dynamic allocations fill its block around the static addresses.
    const dyn = await Promise.all(Array.from({ length: 20 }, (_, i) => a.allocate(req(`dyn-${i}`))));
    const dynIps = dyn.flat().map((x) => x.ip);
    expect(dynIps).not.toContain(s1);
    expect(dynIps).not.toContain(s2);
    expect(new Set(dynIps).size).toBe(20);

    // Once released, the address can be asked for by another pod.
    expect(await a.release({ containerID: 'cid-db-0', interface: 'eth0' })).toBe(1);
    expect((await b.allocate(req('db-1', { staticIPs: [s1] }))).map((x) => x.ip)).toEqual([s1]);
  });

  it('refuses a static IP the ClusterNetwork does not allow, or one that would claim a block, with a Pod Event', async () => {
    const pool = poolName('nostatic');
    const open = poolName('open');
    const cn = await clusterNetwork([
      { name: pool, cidr: '10.110.0.0/24', blockSize: 28 },
      { name: open, cidr: 'fd00:110::/120', blockSize: 124, staticAddresses: { namespaces: ['*'] } },
    ]);
    const a = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    await createPod('tenant');
    const refused = await a.allocate(req('tenant', { staticIPs: ['10.110.0.20'] })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StaticIPNotAllowedError);
    expect((refused as Error).message).toBe(
      `static IP 10.110.0.20 refused: pool ${pool} does not allow static addresses for namespace ${ns}; ` +
        `add it to ClusterNetwork spec.pools[name=${pool}].staticAddresses.namespaces, or drop the address and let IPAM allocate one`,
    );
    // nothing was taken, and no block claimed for it
    expect(await blocksOf(pool)).toEqual([]);
    const event = await eventually(
      async () =>
        (
          await kube.list<
            KubeObject & { reason?: string; message?: string; involvedObject?: { name?: string } }
          >(Builtin.Event, ns)
        ).items.find((e) => e.involvedObject?.name === 'tenant' && e.reason === 'IPAllocationFailed'),
      'the IPAllocationFailed event on the pod',
    );
    expect(event.message).toContain('does not allow static addresses');
    // allowed ("*"), but its block is held by no node: a static address never claims one
    const unclaimed = await a
      .allocate(req('tenant', { staticIPs: ['fd00:110::21'] }))
      .catch((e: unknown) => e);
    expect(unclaimed).toBeInstanceOf(StaticIPUnclaimedBlockError);
    expect((unclaimed as Error).message).toContain(
      'is held by no node, and a static address never claims a block',
    );
    expect(await blocksOf(open)).toEqual([]);
  });

  it('allocates from a shared attachment pool within its range, skipping the gateway and exclusions', async () => {
    const att = poolName('sig');
    const cn = await clusterNetwork(
      [{ name: poolName('p'), cidr: '10.103.0.0/24' }],
      [
        {
          name: att,
          namespace: ns,
          type: 'macvlan',
          master: 'eth0',
          pool: {
            cidr: '192.168.50.0/24',
            rangeStart: '192.168.50.1',
            rangeEnd: '192.168.50.6',
            gateway: '192.168.50.1',
            exclude: ['192.168.50.3/32'],
          },
        },
      ],
    );
    const a = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    const b = createNodeIpam({ kube, node: 'node-b', clusterNetwork: cn });
    const pools = [`attachment:${att}`];
    const got = await Promise.all(
      [0, 1, 2, 3].map((i) => (i % 2 ? a : b).allocate(req(`m-${i}`, { pools, interface: 'net1' }))),
    );
    const ips = got
      .flat()
      .map((x) => x.ip)
      .sort();
    expect(ips).toEqual(['192.168.50.2', '192.168.50.4', '192.168.50.5', '192.168.50.6']);
    expect(got[0]![0]).toMatchObject({
      gateway: '192.168.50.1',
      prefixLength: 24,
      pool: `attachment:${att}`,
    });
    const err = await a.allocate(req('m-9', { pools, interface: 'net1' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolExhaustedError);
    const blocks = await blocksOf(`attachment.${att}`);
    expect(blocks).toHaveLength(1);
    expect(blocks[0]!.spec?.node).toBeUndefined();
  });

  it('lets only the namespaces an attachment pool lists draw from it (a NAD elsewhere may name any pool)', async () => {
    const att = poolName('tenant');
    const shared = poolName('shared');
    const cn = await clusterNetwork(
      [{ name: poolName('p'), cidr: '10.111.0.0/24' }],
      [
        { name: att, namespace: 'team-a', type: 'bridge', pool: { cidr: '192.168.111.0/24' } },
        {
          name: shared,
          namespace: 'team-a',
          type: 'bridge',
          pool: { cidr: '192.168.112.0/24', namespaces: [ns] },
        },
      ],
    );
    const a = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn, events: false });
    const refused = await a
      .allocate(req('intruder', { pools: [`attachment:${att}`], interface: 'net1' }))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UnknownPoolError);
    expect((refused as Error).message).toBe(
      `pool attachment:${att} of ClusterNetwork ${cn} is not open to pods of namespace ${ns}; ` +
        `add it to spec.attachments[name=${att}].pool.namespaces, or use a network of that namespace`,
    );
    expect(await blocksOf(`attachment.${att}`)).toEqual([]);
    const [got] = await a.allocate(req('guest', { pools: [`attachment:${shared}`], interface: 'net1' }));
    expect(got!.ip).toMatch(/^192\.168\.112\./);
  });

  it('GC and orphan reconciliation release only stale addresses of this node, past the grace period', async () => {
    const pool = poolName('gc');
    const cn = await clusterNetwork([{ name: pool, cidr: '10.104.0.0/24', blockSize: 28 }]);
    const a = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    const b = createNodeIpam({ kube, node: 'node-b', clusterNetwork: cn });
    for (const p of ['keep', 'gone-1', 'gone-2']) await a.allocate(req(p));
    await b.allocate(req('other-node'));
    // Within the grace period nothing is released: an ADD may still be in flight.
    expect(await a.gc([{ containerID: 'cid-keep', interface: 'eth0' }], 60_000)).toBe(0);
    expect(await a.gc([{ containerID: 'cid-keep', interface: 'eth0' }], 0)).toBe(2);
    expect((await a.lookup({ containerID: 'cid-keep', interface: 'eth0' })).length).toBe(1);
    expect((await b.lookup({ containerID: 'cid-other-node', interface: 'eth0' })).length).toBe(1);
    expect(await a.releaseOrphans([], 60_000)).toBe(0);
    expect(await a.releaseOrphans([{ namespace: ns, name: 'keep' }], 0)).toBe(0);
    expect(await a.releaseOrphans([], 0)).toBe(1);
    expect(
      (await blocksOf(pool)).flatMap((x) => Object.values(x.spec!.allocations).map((v) => v.pod)),
    ).toEqual(['other-node']);
  });

  it('GC of an attachment network releases only what that network asked for, in its pool, past the grace period', async () => {
    const att = poolName('gcnet');
    const other = poolName('gcother');
    const cn = await clusterNetwork(
      [{ name: poolName('p'), cidr: '10.112.0.0/24' }],
      [
        { name: att, namespace: ns, type: 'bridge', pool: { cidr: '192.168.113.0/24' } },
        { name: other, namespace: ns, type: 'bridge', pool: { cidr: '192.168.114.0/24' } },
      ],
    );
    const a = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn, events: false });
    const on = (pod: string, network: string, pool = att) => ({
      ...req(pod, { pools: [`attachment:${pool}`], interface: 'net1' }),
      network,
    });
    // Two networks (NADs net-a and net-b) draw from one pool; net-a also appears in another pool.
    for (const r of [
      on('a-keep', 'net-a'),
      on('a-gone', 'net-a'),
      on('b-gone', 'net-b'),
      on('o-gone', 'net-a', other),
    ])
      await a.allocate(r);
    const valid = [{ containerID: 'cid-a-keep', interface: 'net1' }];
    const inPool = (pool: string) => pool === `attachment:${att}`;
    expect(await a.gc(valid, 60_000, inPool, 'net-a')).toBe(0);
    expect(await a.gc(valid, 0, inPool, 'net-a')).toBe(1);
    const held = async (pod: string) =>
      (await a.lookup({ containerID: `cid-${pod}`, interface: 'net1' })).length;
    expect({
      'a-keep': await held('a-keep'),
      'a-gone': await held('a-gone'),
      'b-gone': await held('b-gone'),
      'o-gone': await held('o-gone'),
    }).toEqual({ 'a-keep': 1, 'a-gone': 0, 'b-gone': 1, 'o-gone': 1 });
    const [blk] = await blocksOf(`attachment.${att}`);
    expect(Object.values(blk!.spec!.allocations).map((x) => [x.pod, x.network])).toEqual(
      expect.arrayContaining([
        ['a-keep', 'net-a'],
        ['b-gone', 'net-b'],
      ]),
    );
  });

  it('records the pod UID and releases the old address of a recreated pod (same name, new UID), never by timing', async () => {
    const pool = poolName('uid');
    const cn = await clusterNetwork([{ name: pool, cidr: '10.109.0.0/24', blockSize: 28 }]);
    const a = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    const [old] = await a.allocate({ ...req('web-0'), podUID: 'uid-old' });
    const [held] = Object.values((await blocksOf(pool))[0]!.spec!.allocations);
    expect(held).toMatchObject({ pod: 'web-0', podUID: 'uid-old' });
    // the StatefulSet controller recreated web-0: same name, new UID, new sandbox
    const [fresh] = await a.allocate({ ...req('web-0'), containerID: 'cid-web-0-new', podUID: 'uid-new' });
    expect(fresh!.ip).not.toBe(old!.ip);
    expect(await a.releaseOrphans([{ namespace: ns, name: 'web-0', uid: 'uid-new' }], 0)).toBe(1);
    expect(await a.lookup({ containerID: 'cid-web-0', interface: 'eth0' })).toEqual([]);
    expect(await a.lookup({ containerID: 'cid-web-0-new', interface: 'eth0' })).toEqual([fresh]);
  });

  it("picks pools by the Node's labels and counts what it did in Prometheus metrics", async () => {
    const general = poolName('gen');
    const gpu = poolName('gpu');
    const cn = await clusterNetwork([
      {
        name: gpu,
        cidr: '10.107.0.0/24',
        blockSize: 28,
        nodeSelector: { matchLabels: { 'example.com/gpu': 'true' } },
      },
      { name: general, cidr: '10.108.0.0/24', blockSize: 28 },
    ]);
    const gpuNode = uniqueName('gpu-node');
    const plainNode = uniqueName('plain-node');
    await kube.create(Builtin.Node, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: gpuNode, labels: { 'example.com/gpu': 'true' } },
    });
    await kube.create(Builtin.Node, { apiVersion: 'v1', kind: 'Node', metadata: { name: plainNode } });
    const before = await allocationsCounted(general);
    expect(
      (await createNodeIpam({ kube, node: gpuNode, clusterNetwork: cn }).allocate(req('trainer')))[0]!.pool,
    ).toBe(gpu);
    expect(
      (await createNodeIpam({ kube, node: plainNode, clusterNetwork: cn }).allocate(req('web')))[0]!.pool,
    ).toBe(general);
    expect(await allocationsCounted(general)).toBe(before + 1);
    expect(await register.getSingleMetricAsString('trellis_ipam_allocation_duration_seconds')).toMatch(
      /_count \d+/,
    );
    await kube.delete(Builtin.Node, gpuNode);
    await kube.delete(Builtin.Node, plainNode);
  });

  it("reads pools and node labels from the caller's watch caches (no GET on ADD's path), and refuses only on a fresh read", async () => {
    const general = poolName('wc');
    const late = poolName('late');
    const cn = await clusterNetwork([{ name: general, cidr: '10.109.0.0/24', blockSize: 28 }]);
    const node = uniqueName('cached-node');
    await kube.create(Builtin.Node, { apiVersion: 'v1', kind: 'Node', metadata: { name: node } });
    const cnCache = createInformer<ClusterNetwork>({
      kube,
      resource: ClusterNetworkResource,
      fieldSelector: `metadata.name=${cn}`,
    });
    const nodeCache = createInformer({
      kube,
      resource: Builtin.Node,
      fieldSelector: `metadata.name=${node}`,
    });
    cnCache.start();
    nodeCache.start();
    await Promise.all([cnCache.synced, nodeCache.synced]);
    // count this allocator's requests by path (the API server's metrics are shared with other tests)
    const paths: string[] = [];
    const counting = Object.create(kube) as KubeClient;
    counting.request = (method: string, path: string, ...rest: unknown[]) => {
      paths.push(`${method} ${path}`);
      return (kube.request as (...a: unknown[]) => Promise<never>).call(kube, method, path, ...rest);
    };
    let stale = false;
    const ipam = createNodeIpam({
      kube: counting,
      node,
      clusterNetwork: cn,
      cached: {
        // `stale` stands for a watch a moment behind the ClusterNetwork's latest change
        clusterNetwork: () =>
          stale ? { pools: [{ name: general, cidr: '10.109.0.0/24' }] } : cnCache.get(cn)?.spec,
        nodeLabels: () => nodeCache.get(node)?.metadata.labels ?? (nodeCache.hasSynced() ? {} : undefined),
      },
    });
    for (let i = 0; i < 5; i++) expect((await ipam.allocate(req(`cached-${i}`)))[0]!.pool).toBe(general);
    expect(paths.filter((p) => p.startsWith('GET') && /clusternetworks|\/nodes\//.test(p))).toEqual([]);
    // a pool the (stale) cache does not know yet is looked up before refusing
    const cur = await kube.get<ClusterNetwork>(ClusterNetworkResource, cn);
    cur.spec!.pools.push({ name: late, cidr: '10.110.0.0/24', blockSize: 28 });
    await kube.replace(ClusterNetworkResource, cur);
    stale = true;
    expect((await ipam.allocate(req('late-pool', { pools: [late] })))[0]!.pool).toBe(late);
    const err = await ipam.allocate(req('nowhere', { pools: ['no-such-pool'] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownPoolError);
    expect((err as Error).message).toContain('pool no-such-pool is not in ClusterNetwork');
    await Promise.all([cnCache.stop(), nodeCache.stop()]);
    await kube.delete(Builtin.Node, node);
  });

  it('releases on DEL even after the ClusterNetwork is gone', async () => {
    const pool = poolName('del');
    const cn = await clusterNetwork([{ name: pool, cidr: '10.106.0.0/24', blockSize: 28 }]);
    await createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn }).allocate(req('orphaned'));
    await kube.delete(ClusterNetworkResource, cn);
    const restarted = createNodeIpam({ kube, node: 'node-a', clusterNetwork: cn });
    expect(await restarted.release({ containerID: 'cid-orphaned', interface: 'eth0' })).toBe(1);
    expect(await restarted.release({ containerID: 'cid-orphaned', interface: 'eth0' })).toBe(0);
    expect((await blocksOf(pool)).flatMap((b) => Object.keys(b.spec!.allocations))).toEqual([]);
    const err = await restarted.allocate(req('late')).catch((e: unknown) => e);
    expect((err as Error).message).toContain(`ClusterNetwork ${cn} not found`);
  });

  it("reclaims a deleted node's blocks after the grace period, keeping live pods' addresses until they go", async () => {
    const pool = poolName('reclaim');
    const node = uniqueName('gone-node');
    const cn = await clusterNetwork([{ name: pool, cidr: '10.105.0.0/24', blockSize: 28 }]);
    await kube.create(Builtin.Node, { apiVersion: 'v1', kind: 'Node', metadata: { name: node } });
    const ipam = createNodeIpam({ kube, node, clusterNetwork: cn });
    await createPod('survivor');
    const survivor = await ipam.allocate(req('survivor'));
    for (let i = 0; i < 20; i++) await ipam.allocate(req(`ghost-${i}`)); // pods that never existed
    const before = await blocksOf(pool);
    expect(before).toHaveLength(2);

    // While the node exists nothing is touched.
    expect(await reclaimOrphanBlocks(kube, { graceSeconds: 1, pools: [pool] })).toEqual({
      marked: [],
      deleted: [],
      released: [],
      dropped: 0,
    });
    await kube.delete(Builtin.Node, node);
    const first = await reclaimOrphanBlocks(kube, { graceSeconds: 1, pools: [pool] });
    expect(first.marked.sort()).toEqual(before.map((b) => b.metadata.name).sort());
    expect(first.deleted).toEqual([]);

    await eventually(
      async () => (await reclaimOrphanBlocks(kube, { graceSeconds: 1, pools: [pool] })).deleted.length > 0,
      'reclaim after grace',
      20_000,
    );
    const after = await blocksOf(pool);
    expect(after).toHaveLength(1);
    expect(after[0]!.spec?.node).toBeUndefined();
    expect(after[0]!.metadata.labels?.[BLOCK_NODE_LABEL]).toBeUndefined();
    expect(Object.keys(after[0]!.spec!.allocations)).toEqual([survivor[0]!.ip]);

    await kube.delete(Builtin.Pod, 'survivor', ns);
    await eventually(
      async () => (await kube.getOrUndefined(Builtin.Pod, 'survivor', ns)) === undefined,
      'pod deleted',
    );
    await reclaimOrphanBlocks(kube, { graceSeconds: 1, pools: [pool] });
    expect(await blocksOf(pool)).toEqual([]);
  });
});
