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
import { inPod, podArgs, runChain, trySh, sh } from './fixtures/cni-harness.ts';

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
): Promise<{ pod: string; containerID: string; interface: string } | undefined> {
  const blocks = await h.kube.listAll<IPBlock>(IPBlockResource, undefined, {
    labelSelector: `${BLOCK_POOL_LABEL}=${poolKey(`attachment:${attachment}`)}`,
  });
  for (const b of blocks.items) {
    const a = b.spec?.allocations?.[ip];
    if (a) return { pod: `${a.namespace}/${a.pod}`, containerID: a.containerID, interface: a.interface };
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
    expect(await holderOf(ipA)).toEqual({ pod: 'default/tca-a', containerID: 'tca-a', interface: 'net1' });

    await runChain('CHECK', conflist, binDirs, call(a, 'tca-a'), {}, ra.result);
    await runChain('DEL', conflist, binDirs, call(a, 'tca-a'), {}, ra.result);
    expect(await holderOf(ipA)).toBeUndefined();
    // DEL again (the runtime retries) is fine, and the other pod keeps its address.
    await runChain('DEL', conflist, binDirs, call(a, 'tca-a'), {}, ra.result);
    expect((await holderOf(addrB!.split('/')[0]!))?.pod).toBe('default/tca-b');
    await runChain('DEL', conflist, binDirs, call(b, 'tca-b'), {}, rb.result);
  });
});
