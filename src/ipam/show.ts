// `trellis ipam show [--json]`: pools with their usage, blocks per node, and who holds each IP,
// read straight from the API (ClusterNetworks and IPBlocks), so it is what IPAM itself believes.
import type { ClusterNetwork } from '../api/clusternetwork.ts';
import { ClusterNetworkResource, IPBlockResource } from '../api/group.ts';
import type { IPBlock } from '../api/ipam.ts';
import type { KubeClient } from '../kube/client.ts';
import { isApiError } from '../kube/errors.ts';
import { parseIP } from './cidr.ts';
import { summarizePoolUsage } from './usage.ts';

export interface IpamView {
  pools: {
    clusterNetwork: string;
    name: string;
    cidr: string;
    capacity: number;
    allocated: number;
    blocks: number;
  }[];
  blocks: {
    name: string;
    pool: string;
    cidr: string;
    node: string;
    used: number;
    allocations: {
      ip: string;
      namespace: string;
      pod: string;
      containerID: string;
      interface: string;
      node?: string;
      static: boolean;
      allocatedAt: string;
    }[];
  }[];
}

export async function ipamView(kube: KubeClient): Promise<IpamView> {
  let cns: ClusterNetwork[] = [];
  try {
    cns = (await kube.listAll<ClusterNetwork>(ClusterNetworkResource)).items;
  } catch (err: unknown) {
    if (!isApiError(err, 404)) throw err; // CRD not installed: show blocks alone
  }
  const blocks = (await kube.listAll<IPBlock>(IPBlockResource)).items.filter((b) => b.spec);
  const pools = cns.flatMap((cn) =>
    summarizePoolUsage(cn, blocks).map((u) => ({ clusterNetwork: cn.metadata.name, ...u })),
  );
  const view: IpamView['blocks'] = blocks
    .map((b) => ({
      name: b.metadata.name,
      pool: b.spec!.pool,
      cidr: b.spec!.cidr,
      node: b.spec!.node ?? '',
      used: Object.keys(b.spec!.allocations ?? {}).length,
      allocations: Object.entries(b.spec!.allocations ?? {})
        .map(([ip, a]) => ({
          ip,
          namespace: a.namespace,
          pod: a.pod,
          containerID: a.containerID,
          interface: a.interface,
          ...(a.node ? { node: a.node } : {}),
          static: a.static === true,
          allocatedAt: a.allocatedAt,
        }))
        .sort((x, y) => cmpIP(x.ip, y.ip)),
    }))
    .sort(
      (x, y) =>
        x.node.localeCompare(y.node) ||
        x.pool.localeCompare(y.pool) ||
        cmpIP(x.cidr.split('/')[0]!, y.cidr.split('/')[0]!),
    );
  return { pools, blocks: view };
}

export async function ipamShow(kube: KubeClient, opts: { json: boolean }): Promise<string> {
  const view = await ipamView(kube);
  if (opts.json) return JSON.stringify(view, null, 2);
  const lines: string[] = [];
  lines.push('POOLS');
  lines.push(
    table([
      ['CLUSTERNETWORK', 'POOL', 'CIDR', 'ALLOCATED', 'CAPACITY', 'BLOCKS'],
      ...view.pools.map((p) => [
        p.clusterNetwork,
        p.name,
        p.cidr,
        String(p.allocated),
        String(p.capacity),
        String(p.blocks),
      ]),
    ]),
  );
  const byNode = new Map<string, IpamView['blocks']>();
  for (const b of view.blocks)
    byNode.set(b.node || '(shared)', [...(byNode.get(b.node || '(shared)') ?? []), b]);
  for (const [node, blocks] of byNode) {
    lines.push('', `NODE ${node}`);
    for (const b of blocks) {
      lines.push(`  block ${b.cidr} (pool ${b.pool}, ${b.used} used)`);
      for (const a of b.allocations) {
        const extra = [a.static ? 'static' : '', a.node && a.node !== b.node ? `borrowed by ${a.node}` : '']
          .filter(Boolean)
          .join(', ');
        lines.push(
          `    ${a.ip.padEnd(24)} ${a.namespace}/${a.pod} ${a.interface} ${a.containerID.slice(0, 12)}${extra ? ` (${extra})` : ''}`,
        );
      }
    }
  }
  if (view.blocks.length === 0) lines.push('', 'no blocks claimed yet');
  return lines.join('\n');
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function cmpIP(a: string, b: string): number {
  try {
    const x = parseIP(a);
    const y = parseIP(b);
    if (x.family !== y.family) return x.family - y.family;
    return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
  } catch {
    return a.localeCompare(b);
  }
}
