// Attachment IPAM through the plugin, as Multus runs it: Debian's real macvlan plugin, with
// `ipam: {type: trellis, pool: ...}`, finds our plugin executable in CNI_PATH and calls it as its
// IPAM plugin; the shim forwards to the real agent, which allocates from the ClusterNetwork's
// attachment pool in IPBlocks. Real netns, real macvlan link, real addresses on it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClusterNetworkResource, IPBlockResource } from '../../src/api/group.ts';
import { BLOCK_POOL_LABEL, type IPBlock } from '../../src/api/ipam.ts';
import { poolKey } from '../../src/ipam/block.ts';
import { useAgentHarness } from '../support/agent-harness.ts';
import { inPod, ipOf, podArgs, runChain, runPlugin, trySh, sh } from './fixtures/cni-harness.ts';

const MASTER = 'tca-master';
const POOL_CIDR = '192.168.231.0/24';
let conflist: string;
let attachment: string;
const h = useAgentHarness({
  name: 'tca',
  podPrefix: 'tca',
  v4: '10.250.48.0/20',
  v6: 'fd00:250::3:0/112',
  async beforeAgent({ kube, net }) {
    attachment = `${net.clusterNetwork}-sig`.slice(0, 60);
    await kube.mergePatch(ClusterNetworkResource, net.clusterNetwork, {
      spec: {
        attachments: [
          {
            name: attachment,
            type: 'macvlan',
            master: MASTER,
            pool: { cidr: POOL_CIDR, gateway: '192.168.231.1' },
          },
        ],
      },
    });
    // The host link macvlan hangs off (this kernel has no dummy links; a veth serves as well).
    trySh('ip', ['link', 'del', MASTER]);
    h.ownLink(MASTER);
    sh('ip', ['link', 'add', MASTER, 'type', 'veth', 'peer', 'name', `${MASTER}-p`]);
    sh('ip', ['link', 'set', MASTER, 'up']);
  },
});
const { pod, scratch } = h;

async function holderOf(
  ip: string,
): Promise<{ pod: string; containerID: string; interface: string; network?: string } | undefined> {
  const blocks = await h.kube.listAll<IPBlock>(IPBlockResource, undefined, {
    labelSelector: `${BLOCK_POOL_LABEL}=${poolKey(`attachment:${attachment}`)}`,
  });
  for (const b of blocks.items) {
    const a = b.spec?.allocations?.[ip];
    if (a)
      return {
        pod: `${a.namespace}/${a.pod}`,
        containerID: a.containerID,
        interface: a.interface,
        ...(a.network ? { network: a.network } : {}),
      };
  }
  return undefined;
}

beforeAll(() => {
  conflist = join(scratch, `${attachment}.conflist`);
  writeFileSync(
    conflist,
    JSON.stringify({
      cniVersion: '1.0.0',
      name: attachment,
      plugins: [
        {
          type: 'macvlan',
          master: MASTER,
          mode: 'bridge',
          ipam: { type: 'trellis', pool: attachment, socket: h.agent.socket },
        },
      ],
    }),
  );
});

describe('attachment IPAM driven through the plugin', () => {
  it('gives a macvlan attachment an address from the attachment pool, recorded, checked and released', async () => {
    const binDirs = ['/usr/lib/cni', h.agent.binDir];
    const a = pod('a');
    const b = pod('b');
    const call = (p: { path: string }, id: string) => ({
      containerID: id,
      netns: p.path,
      ifname: 'net1',
      args: podArgs('default', id),
    });
    const ra = await runChain('ADD', conflist, binDirs, call(a, 'tca-a'));
    const rb = await runChain('ADD', conflist, binDirs, call(b, 'tca-b'));
    const ipsOf = (r: { result: Record<string, unknown> }) =>
      (r.result.ips as { address: string; gateway?: string }[]).map((x) => x.address);
    const [addrA] = ipsOf(ra);
    const [addrB] = ipsOf(rb);
    expect(addrA).toMatch(/^192\.168\.231\.\d+\/24$/);
    expect(addrB).toMatch(/^192\.168\.231\.\d+\/24$/);
    expect(addrA).not.toBe(addrB);
    expect((ra.result.ips as { gateway?: string }[])[0]!.gateway).toBe('192.168.231.1');
    const ipA = addrA!.split('/')[0]!;

    // The macvlan plugin put the address our IPAM chose on the pod's interface.
    const shown = inPod(a.ns, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'net1']);
    expect(shown.ok, shown.out).toBe(true);
    expect(shown.out).toContain(addrA);
    // Recorded in the attachment pool's IPBlock under the pod and attachment that holds it.
    expect(await holderOf(ipA)).toEqual({
      pod: 'default/tca-a',
      containerID: 'tca-a',
      interface: 'net1',
      network: attachment,
    });

    await runChain('CHECK', conflist, binDirs, call(a, 'tca-a'), {}, ra.result);
    await runChain('DEL', conflist, binDirs, call(a, 'tca-a'), {}, ra.result);
    expect(await holderOf(ipA)).toBeUndefined();
    // DEL again (the runtime retries) is fine, and the other pod keeps its address.
    await runChain('DEL', conflist, binDirs, call(a, 'tca-a'), {}, ra.result);
    expect((await holderOf(addrB!.split('/')[0]!))?.pod).toBe('default/tca-b');
    await runChain('DEL', conflist, binDirs, call(b, 'tca-b'), {}, rb.result);
  });
});

describe('GC of one attachment network', () => {
  it("releases that network's addresses that are not valid and leaves another network drawing from the same pool alone", async () => {
    const binDirs = ['/usr/lib/cni', h.agent.binDir];
    // A second network (another NAD, say) whose IPAM draws from the same attachment pool.
    const other = `${attachment}-b`.slice(0, 60);
    const otherList = join(scratch, 'other.conflist');
    const plugin = {
      type: 'macvlan',
      master: MASTER,
      mode: 'bridge',
      ipam: { type: 'trellis', pool: attachment, socket: h.agent.socket },
    };
    writeFileSync(otherList, JSON.stringify({ cniVersion: '1.0.0', name: other, plugins: [plugin] }));
    const add = async (list: string, id: string) => {
      const p = pod(id);
      const r = await runChain('ADD', list, binDirs, {
        containerID: id,
        netns: p.path,
        ifname: 'net1',
        args: podArgs('default', id),
      });
      return { id, path: p.path, result: r.result, ip: ipOf(r.result) };
    };
    const kept = await add(conflist, 'tca-gc-kept');
    const leaked = await add(conflist, 'tca-gc-leaked');
    const neighbour = await add(otherList, 'tca-gc-other');
    expect(await holderOf(leaked.ip)).toMatchObject({ containerID: 'tca-gc-leaked', network: attachment });
    expect(await holderOf(neighbour.ip)).toMatchObject({ containerID: 'tca-gc-other', network: other });

    // GC of the first network, as a spec 1.1 delegate forwards it to its IPAM: the network's own
    // config with the attachments still valid. tca-gc-leaked is not among them (its DEL was lost);
    // tca-gc-other is not either, but it belongs to the other network.
    const gc = await runPlugin(
      join(h.agent.binDir, 'trellis'),
      { CNI_COMMAND: 'GC', CNI_PATH: binDirs.join(':') },
      JSON.stringify({
        cniVersion: '1.1.0',
        name: attachment,
        ...plugin,
        'cni.dev/valid-attachments': [{ containerID: 'tca-gc-kept', ifname: 'net1' }],
      }),
    );
    expect(gc.code, gc.stdout).toBe(0);
    expect(await holderOf(leaked.ip)).toBeUndefined();
    expect(await holderOf(kept.ip)).toMatchObject({ containerID: 'tca-gc-kept', network: attachment });
    expect(await holderOf(neighbour.ip)).toMatchObject({ containerID: 'tca-gc-other', network: other });

    await runChain(
      'DEL',
      conflist,
      binDirs,
      { containerID: kept.id, netns: kept.path, ifname: 'net1', args: podArgs('default', kept.id) },
      {},
      kept.result,
    );
    await runChain(
      'DEL',
      otherList,
      binDirs,
      {
        containerID: neighbour.id,
        netns: neighbour.path,
        ifname: 'net1',
        args: podArgs('default', neighbour.id),
      },
      {},
      neighbour.result,
    );
    expect(await holderOf(kept.ip)).toBeUndefined();
    expect(await holderOf(neighbour.ip)).toBeUndefined();
  });
});
