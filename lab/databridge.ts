// The lab's second underlay, for extra networks: a data bridge in the root netns and, in every
// node, three links whose peers are on it: `eth1` (the master of macvlan/ipvlan/vlan attachments),
// `hdev0` (a device for host-device attachments to move into a pod: this kernel lacks the `dummy`
// link type, so a veth stands in) and `eth2`, the port of a node bridge `br-data` that bridge
// attachments plug pods into. A plain bridge (this kernel has no bridge VLAN filtering) forwards
// 802.1Q tagged frames as they are, for vlan attachments where the kernel has 8021q (this one
// does not). The data bridge has no address: the root netns never takes part in pod traffic.
import { inNetns, linkExists, run } from './sh.ts';
import type { LabNode, LabState } from './state.ts';

/** Node-side names; attachments in the lab name these as master/device/bridge. */
export const DATA_NIC = 'eth1';
export const HOST_DEVICE = 'hdev0';
/** A Linux bridge in each node with `eth2` (on the data bridge) as its port, for bridge attachments. */
export const DATA_BRIDGE = 'br-data';
const BRIDGE_PORT = 'eth2';

export function dataBridgeName(s: Pick<LabState, 'prefix'>): string {
  return `${s.prefix}-data`;
}

export function createDataBridge(s: LabState): void {
  const br = dataBridgeName(s);
  if (linkExists(br)) throw new Error(`link ${br} already exists; run \`trellis lab down\` first`);
  run(['ip', 'link', 'add', br, 'type', 'bridge']);
  run(['ip', 'link', 'set', br, 'up']);
}

function nodeIndex(s: LabState, node: LabNode): number {
  return s.nodes.findIndex((n) => n.name === node.name) + 1;
}

/** eth1, hdev0 and eth2 (a port of br-data) in the node's netns, their peers on the data bridge. */
export function createDataNics(s: LabState, node: LabNode): void {
  const br = dataBridgeName(s);
  const i = nodeIndex(s, node);
  for (const [rootEnd, nodeEnd] of [
    [`${s.prefix}-d${i}`, DATA_NIC],
    [`${s.prefix}-h${i}`, HOST_DEVICE],
    [`${s.prefix}-b${i}`, BRIDGE_PORT],
  ] as const) {
    run(['ip', 'link', 'add', rootEnd, 'type', 'veth', 'peer', 'name', nodeEnd, 'netns', node.netns]);
    run(['ip', 'link', 'set', rootEnd, 'master', br]);
    run(['ip', 'link', 'set', rootEnd, 'up']);
    run(inNetns(node.netns, ['ip', 'link', 'set', nodeEnd, 'up']));
  }
  run(inNetns(node.netns, ['ip', 'link', 'add', DATA_BRIDGE, 'type', 'bridge']));
  run(inNetns(node.netns, ['ip', 'link', 'set', BRIDGE_PORT, 'master', DATA_BRIDGE]));
  run(inNetns(node.netns, ['ip', 'link', 'set', DATA_BRIDGE, 'up']));
}
