// The agent admission policy, enforced by the real API server: every node's agent shares one
// ServiceAccount, and the ValidatingAdmissionPolicy the operator renders holds each agent to its
// own node's NodeNetworkStatus and blocks, block-sized and inside a pool of its ClusterNetwork. The
// agents authenticate as they do in the lab: TokenRequest tokens bound to their Node, which carry
// the authentication.kubernetes.io/node-name extra.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClusterNetwork } from '../../src/api/clusternetwork.ts';
import {
  API_VERSION,
  ClusterNetworkResource,
  IPBlockResource,
  NodeNetworkStatusResource,
} from '../../src/api/group.ts';
import type { IPBlock } from '../../src/api/ipam.ts';
import { ensurePki, issueClientCert } from '../../src/controlplane/pki.ts';
import { nodeBoundToken, writeTokenKubeconfig } from '../../src/controlplane/tokens.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import { isApiError } from '../../src/kube/errors.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin, type Resource } from '../../src/kube/resource.ts';
import { renderClusterNetwork } from '../../src/render/index.ts';
import { createNodeIpam } from '../../src/ipam/index.ts';
import { createLogger } from '../../src/log/logger.ts';
import { StatusReporter } from '../../agent/status.ts';
import { createInformer } from '../../src/kube/informer.ts';
import { TYPICAL_KERNEL } from '../support/kernel.ts';
import { adminClient, eventually, kubeconfigPath, uniqueName } from '../support/kube.ts';
import { readFileSync, writeFileSync } from 'node:fs';

const KINDS: Record<string, Resource> = {
  ServiceAccount: Builtin.ServiceAccount,
  ClusterRole: Builtin.ClusterRole,
  ClusterRoleBinding: Builtin.ClusterRoleBinding,
  ValidatingAdmissionPolicy: Builtin.ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding: Builtin.ValidatingAdmissionPolicyBinding,
};

describe('the agent admission policy', () => {
  let admin: KubeClient;
  let ns: string;
  let cnName: string;
  let nodeA: string;
  let nodeB: string;
  let agentA: KubeClient;
  let agentB: KubeClient;
  let noNode: KubeClient;
  const applied: [Resource, KubeObject][] = [];
  const pool = 'v4';

  const block = (
    cidr: string,
    node: string | undefined,
    allocations: Record<string, unknown> = {},
    p = pool,
  ) =>
    ({
      apiVersion: API_VERSION,
      kind: 'IPBlock',
      metadata: { name: `${cnName}.${cidr.replace(/[./:]/g, '-')}` },
      spec: { pool: p, cidr, ...(node ? { node } : {}), allocations },
    }) as KubeObject;
  const alloc = (node: string, pod: string) => ({
    namespace: 'default',
    pod,
    containerID: `c-${pod}`,
    interface: 'eth0',
    allocatedAt: new Date().toISOString(),
    node,
  });
  const nns = (name: string) => ({
    apiVersion: API_VERSION,
    kind: 'NodeNetworkStatus',
    metadata: { name },
    spec: {},
  });
  async function refusal(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (err: unknown) {
      if (isApiError(err) && (err.code === 403 || err.code === 422)) return err.message;
      throw err;
    }
    throw new Error('the write was admitted');
  }

  beforeAll(async () => {
    admin = await adminClient();
    await installCrds(admin);
    // short: the no-node client certificate's CN (the ServiceAccount username) must fit in 64 bytes
    const tag = uniqueName('x').slice(-4);
    ns = `vap-${tag}`;
    cnName = `vapcn-${tag}`;
    [nodeA, nodeB] = [`${cnName}-a`, `${cnName}-b`];
    await admin.create(Builtin.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    for (const n of [nodeA, nodeB])
      await admin.create(Builtin.Node, { apiVersion: 'v1', kind: 'Node', metadata: { name: n } });
    const cn = (await admin.create(ClusterNetworkResource, {
      apiVersion: API_VERSION,
      kind: 'ClusterNetwork',
      metadata: { name: cnName },
      spec: {
        pools: [{ name: pool, cidr: '10.252.0.0/16', blockSize: 26 }],
        attachments: [
          { name: `${cnName}-att`, namespace: ns, type: 'bridge', pool: { cidr: '192.168.252.0/24' } },
        ],
      },
    } as KubeObject)) as ClusterNetwork;
    // what the operator renders for the agent: ServiceAccount, ClusterRole + binding, policy + binding
    for (const o of renderClusterNetwork(cn, { namespace: ns })) {
      const r = KINDS[o.kind];
      if (!r) continue;
      await admin.apply(r, o, { force: true });
      applied.push([r, o]);
    }
    const sa = `trellis-agent-${cnName}`;
    const dir = inject('controlPlaneDir');
    const client = async (node: string) =>
      KubeClient.fromKubeconfig(
        writeTokenKubeconfig(
          kubeconfigPath(),
          join(dir, `${node}.kubeconfig`),
          sa,
          await nodeBoundToken(admin, ns, sa, node, 3600),
        ),
      );
    agentA = await client(nodeA);
    agentB = await client(nodeB);
    // the same ServiceAccount name from a client certificate: no node-name extra
    const { cert, key } = issueClientCert(
      ensurePki(join(dir, 'pki')),
      `${ns}-nonode`,
      `system:serviceaccount:${ns}:${sa}`,
      ['system:serviceaccounts'],
    );
    const cfg = JSON.parse(readFileSync(kubeconfigPath(), 'utf8')) as {
      users: { user: Record<string, string> }[];
    };
    cfg.users[0]!.user = {
      'client-certificate-data': readFileSync(cert).toString('base64'),
      'client-key-data': readFileSync(key).toString('base64'),
    };
    writeFileSync(join(dir, `${ns}-nonode.kubeconfig`), JSON.stringify(cfg), { mode: 0o600 });
    noNode = await KubeClient.fromKubeconfig(join(dir, `${ns}-nonode.kubeconfig`));
    // the API server picks a new policy up asynchronously: wait until it refuses a foreign status
    await eventually(
      async () =>
        (await refusal(agentA.apply(NodeNetworkStatusResource, nns(nodeB), { fieldManager: 't' })).catch(
          () => '',
        )) !== '',
      'the admission policy to be enforced',
      30_000,
    ).catch(async (err: unknown) => {
      const vap = await admin.get(Builtin.ValidatingAdmissionPolicy, sa);
      throw new Error(`${String(err)}\npolicy status: ${JSON.stringify(vap.status)}`);
    });
  });

  afterAll(async () => {
    for (const c of [agentA, agentB, noNode]) await c?.close();
    const blocks = await admin.listAll<IPBlock>(IPBlockResource);
    for (const b of blocks.items)
      if (b.metadata.name.startsWith(`${cnName}.`)) await admin.delete(IPBlockResource, b.metadata.name);
    for (const n of [nodeA, nodeB]) {
      await admin.delete(NodeNetworkStatusResource, n);
      await admin.delete(Builtin.Node, n);
    }
    for (const [r, o] of applied.reverse()) await admin.delete(r, o.metadata.name, o.metadata.namespace);
    await admin.delete(ClusterNetworkResource, cnName);
    await admin.delete(Builtin.Namespace, ns);
    await admin.close();
  });

  it('lets an agent write only the NodeNetworkStatus of its own node', async () => {
    const okStatus = {
      ready: true,
      clusterNetwork: cnName,
      backend: 'vxlan',
      lastHeartbeatTime: new Date().toISOString(),
    };
    await agentA.apply(NodeNetworkStatusResource, nns(nodeA), { fieldManager: 'trellis-agent' });
    await agentA.apply(
      NodeNetworkStatusResource,
      { ...nns(nodeA), status: okStatus },
      { fieldManager: 'trellis-agent' },
      'status',
    );
    expect(
      await refusal(agentA.apply(NodeNetworkStatusResource, nns(nodeB), { fieldManager: 'trellis-agent' })),
    ).toMatch(new RegExp(`agent of node ${nodeA} may write only the NodeNetworkStatus named ${nodeA}`));
    await agentB.apply(NodeNetworkStatusResource, nns(nodeB), { fieldManager: 'trellis-agent' });
    expect(
      await refusal(
        agentB.apply(
          NodeNetworkStatusResource,
          { ...nns(nodeA), status: okStatus },
          { fieldManager: 'trellis-agent' },
          'status',
        ),
      ),
    ).toMatch(/may write only the NodeNetworkStatus/);
  });

  it('refuses an agent whose credentials name no node', async () => {
    expect(
      await refusal(noNode.apply(NodeNetworkStatusResource, nns(nodeA), { fieldManager: 'trellis-agent' })),
    ).toMatch(/credentials name no node \(authentication.kubernetes.io\/node-name\)/);
  });

  it("a binding left behind by a deleted ClusterNetwork blocks nobody else's writes", async () => {
    // What the operator renders for a ClusterNetwork that no longer exists (its operator died
    // before cleaning up): the policy and binding stay, their parameter is gone.
    const gone = `${cnName}-gone`;
    const stale = renderClusterNetwork(
      {
        apiVersion: API_VERSION,
        kind: 'ClusterNetwork',
        metadata: { name: gone },
        spec: { pools: [], backend: { mode: 'vxlan' } },
      },
      { namespace: ns },
    ).filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy'));
    expect(stale.map((o) => o.kind).sort()).toEqual([
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ]);
    for (const o of stale) {
      await admin.apply(KINDS[o.kind]!, o, { force: true });
      applied.push([KINDS[o.kind]!, o]);
    }
    // The API server loads policies and bindings asynchronously (about a second): write for five
    // seconds, every write must pass.
    const name = `${cnName}-admin`;
    for (let i = 0; i < 20; i++) {
      await admin.create(NodeNetworkStatusResource, nns(name));
      await admin.delete(NodeNetworkStatusResource, name);
      await agentA.apply(NodeNetworkStatusResource, nns(nodeA), { fieldManager: 'trellis-agent' });
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  it('lets an agent create only its own blocks, block-sized, aligned and inside a pool of its ClusterNetwork', async () => {
    await agentA.create(IPBlockResource, block('10.252.0.0/26', nodeA, { '10.252.0.1': alloc(nodeA, 'p1') }));
    expect(await refusal(agentA.create(IPBlockResource, block('10.252.0.64/26', nodeB)))).toMatch(
      /may only create or adopt blocks for itself/,
    );
    for (const bad of ['0.0.0.0/1', '10.252.0.0/16', '10.252.1.0/25', '10.253.0.0/26', '10.252.0.128/27']) {
      expect(await refusal(agentA.create(IPBlockResource, block(bad, nodeA))), bad).toMatch(
        /is not one block of pool/,
      );
    }
    expect(await refusal(agentA.create(IPBlockResource, block('10.252.2.0/26', nodeA, {}, 'nope')))).toMatch(
      /is not one block of pool nope/,
    );
    // a shared attachment block: no node, the attachment pool's block size
    await agentA.create(
      IPBlockResource,
      block('192.168.252.0/26', undefined, {}, `attachment:${cnName}-att`),
    );
    // someone else's allocation slipped into a new block
    expect(
      await refusal(
        agentA.create(IPBlockResource, block('10.252.3.0/26', nodeA, { '10.252.3.1': alloc(nodeB, 'x') })),
      ),
    ).toMatch(/only its own allocations/);
  });

  it('lets another node borrow and release its own addresses in a block, and nothing else', async () => {
    const name = block('10.252.0.0/26', nodeA).metadata.name;
    const get = () => admin.get<IPBlock>(IPBlockResource, name);
    // borrow: B adds an allocation it made
    let b = await get();
    b.spec!.allocations['10.252.0.2'] = alloc(nodeB, 'borrowed') as never;
    await agentB.replace(IPBlockResource, b);
    // B may not release A's allocation, nor take the block
    b = await get();
    delete b.spec!.allocations['10.252.0.1'];
    expect(await refusal(agentB.replace(IPBlockResource, b))).toMatch(/only its own allocations/);
    b = await get();
    b.spec!.node = nodeB;
    expect(await refusal(agentB.replace(IPBlockResource, b))).toMatch(
      /may only create or adopt blocks for itself/,
    );
    // B releases its own; A releases its own
    b = await get();
    delete b.spec!.allocations['10.252.0.2'];
    await agentB.replace(IPBlockResource, b);
    b = await get();
    delete b.spec!.allocations['10.252.0.1'];
    await agentA.replace(IPBlockResource, b);
    // agents never delete blocks (RBAC refuses before the policy)
    expect(await refusal(agentA.delete(IPBlockResource, name))).toMatch(/forbidden/i);
  });

  it('lets an agent adopt a block that lost its node, for itself only', async () => {
    await admin.create(IPBlockResource, block('10.252.4.0/26', undefined));
    const name = block('10.252.4.0/26', undefined).metadata.name;
    let b = await admin.get<IPBlock>(IPBlockResource, name);
    b.spec!.node = nodeA;
    expect(await refusal(agentB.replace(IPBlockResource, b))).toMatch(
      /may only create or adopt blocks for itself/,
    );
    b = await admin.get<IPBlock>(IPBlockResource, name);
    b.spec!.node = nodeA;
    b.spec!.allocations['10.252.4.1'] = alloc(nodeA, 'adopted') as never;
    await agentA.replace(IPBlockResource, b);
  });

  it("passes the agent's own code paths under its node-bound token: IPAM, orphan release, status, ClusterNetwork watch", async () => {
    // IPAM as the agent runs it (claim a block, allocate, release, orphan sweep), on both nodes
    const ipamA = createNodeIpam({ kube: agentA, node: nodeA, clusterNetwork: cnName, events: false });
    const ipamB = createNodeIpam({ kube: agentB, node: nodeB, clusterNetwork: cnName, events: false });
    const req = (pod: string) => ({
      namespace: 'default',
      pod,
      podUID: `uid-${pod}`,
      containerID: `cid-${pod}`,
      interface: 'eth0',
    });
    const [a1] = await ipamA.allocate(req('a1'));
    const [b1] = await ipamB.allocate(req('b1'));
    expect(a1!.ip).not.toBe(b1!.ip);
    expect(await ipamA.release({ containerID: 'cid-a1', interface: 'eth0' })).toBe(1);
    await ipamB.allocate(req('b2'));
    expect(await ipamB.releaseOrphans([{ namespace: 'default', name: 'b1', uid: 'uid-b1' }], 0)).toBe(1);
    const att = await ipamA.allocate({
      ...req('a2'),
      namespace: ns, // the attachment's namespace: its pool is open to its pods
      pools: [`attachment:${cnName}-att`],
      interface: 'net1',
    });
    expect(att[0]!.ip).toMatch(/^192\.168\.252\./);
    // the status reporter (server-side apply of the object, then its status)
    const reporter = new StatusReporter(
      agentA,
      nodeA,
      cnName,
      TYPICAL_KERNEL,
      createLogger('test', 'silent'),
    );
    await reporter.report({
      ready: true,
      reason: 'Ready',
      message: 'ok',
      backend: 'vxlan',
      nodeIP: '192.0.2.1',
      mtu: 1450,
      clusterCidrs: ['10.252.0.0/16'],
      ownBlocks: [],
      peers: 0,
    });
    // the ClusterNetwork list+watch by name (RBAC resourceNames honour a metadata.name field selector)
    const cache = createInformer({
      kube: agentA,
      resource: ClusterNetworkResource,
      fieldSelector: `metadata.name=${cnName}`,
      logger: createLogger('test', 'silent'),
    });
    cache.start();
    try {
      await eventually(async () => cache.hasSynced(), 'the ClusterNetwork list as the agent', 10_000);
      expect(cache.list().map((o) => o.metadata.name)).toEqual([cnName]);
      await eventually(
        async () => cache.stats().watches >= 1,
        'the ClusterNetwork watch as the agent',
        10_000,
      );
      expect(cache.stats().failures).toBe(0);
    } finally {
      await cache.stop();
    }
  });
});
