// What the running kernel can do, probed for real: each link kind is created in a throwaway
// network namespace (unshare, so nothing is left behind) and nftables is asked to build a table.
// Agents report the result so a missing module is a clear status, never a silent failure.
import { runResult } from './exec.ts';
import type { KernelFeatures } from '../api/nodestatus.ts';

const PROBE = `
ip link add tp-dummy type veth peer name tp-peer 2>/dev/null
ip link add tp-vxlan type vxlan id 42 dstport 4789 nolearning 2>/dev/null && echo vxlan
ip link add tp-bridge type bridge 2>/dev/null && echo bridge
ip link add tp-macvlan link tp-dummy type macvlan mode bridge 2>/dev/null && echo macvlan
ip link add tp-ipvlan link tp-dummy type ipvlan mode l2 2>/dev/null && echo ipvlan
ip link add tp-wg type wireguard 2>/dev/null && echo wireguard
printf 'table ip tp {\n chain c {\n  type nat hook postrouting priority 100\n  masquerade\n }\n}\n' | nft -f - 2>/dev/null && echo nftables
true
`;

export async function probeKernelFeatures(): Promise<KernelFeatures> {
  const r = await runResult('unshare', ['--net', '--', 'sh', '-c', PROBE]);
  const found = new Set(r.stdout.split('\n').map((l) => l.trim()));
  return {
    vxlan: found.has('vxlan'),
    bridge: found.has('bridge'),
    macvlan: found.has('macvlan'),
    ipvlan: found.has('ipvlan'),
    wireguard: found.has('wireguard'),
    nftables: found.has('nftables'),
  };
}

/** Human names of the features a kernel lacks, for status messages. */
export function missingFeatures(f: KernelFeatures): string[] {
  return (Object.keys(f) as (keyof KernelFeatures)[]).filter((k) => !f[k]);
}
