// The kernel an agent on this machine's kind reports (no ipvlan or wireguard modules), for tests
// that hand a node status to the code that judges it. No vitest import: unit tests use it too.
import type { KernelFeatures } from '../../src/api/nodestatus.ts';

export const TYPICAL_KERNEL: KernelFeatures = {
  vxlan: true,
  bridge: true,
  macvlan: true,
  ipvlan: false,
  wireguard: false,
  nftables: true,
};
