// What the running kernel can do, probed for real: each link kind is created in a throwaway
// network namespace (unshare, so nothing is left behind) and nftables is asked to build a table.
// Agents report the result so a missing module is a clear status, never a silent failure.
import { runResult } from './exec.ts';
import type { KernelFeatures } from '../api/nodestatus.ts';

// One `ip -batch` per probe namespace; `-force` goes on past a failing line and names it on
// stderr ("Command failed -:N"), so line N's link kind is missing. No shell involved.
const LINKS: [keyof KernelFeatures | undefined, string][] = [
  [undefined, 'link add tp-dummy type veth peer name tp-peer'],
  ['vxlan', 'link add tp-vxlan type vxlan id 42 dstport 4789 nolearning'],
  ['bridge', 'link add tp-bridge type bridge'],
  ['macvlan', 'link add tp-macvlan link tp-dummy type macvlan mode bridge'],
  ['ipvlan', 'link add tp-ipvlan link tp-dummy type ipvlan mode l2'],
  ['vlan', 'link add link tp-dummy name tp-vlan type vlan id 5'],
  ['wireguard', 'link add tp-wg type wireguard'],
];
const NFT_PROBE =
  'table ip tp {\n chain c {\n  type nat hook postrouting priority 100\n  masquerade\n }\n}\n';

export async function probeKernelFeatures(): Promise<KernelFeatures> {
  const [links, nft] = await Promise.all([
    runResult(
      'unshare',
      ['--net', '--', 'ip', '-force', '-batch', '-'],
      LINKS.map(([, l]) => l).join('\n') + '\n',
    ),
    runResult('unshare', ['--net', '--', 'nft', '-f', '-'], NFT_PROBE),
  ]);
  const failed = new Set([...links.stderr.matchAll(/Command failed -:(\d+)/g)].map((m) => Number(m[1])));
  const has = (f: keyof KernelFeatures): boolean =>
    links.code !== 127 && !failed.has(LINKS.findIndex(([k]) => k === f) + 1);
  return {
    vxlan: has('vxlan'),
    bridge: has('bridge'),
    macvlan: has('macvlan'),
    ipvlan: has('ipvlan'),
    vlan: has('vlan'),
    wireguard: has('wireguard'),
    nftables: nft.code === 0,
  };
}

/** Human names of the features a kernel lacks, for status messages. */
export function missingFeatures(f: KernelFeatures): string[] {
  return (Object.keys(f) as (keyof KernelFeatures)[]).filter((k) => !f[k]);
}
