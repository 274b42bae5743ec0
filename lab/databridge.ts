// The lab's second underlay, for extra networks: a data bridge in the root netns and, in every
// node, an `eth1` on it (the master of macvlan/ipvlan/vlan attachments) and an `hdev0` whose peer
// is also on it (a device for host-device attachments to move into a pod: this kernel lacks the
// `dummy` link type, so a veth stands in). A plain bridge (this kernel has no bridge VLAN
// filtering) forwards 802.1Q tagged frames as they are, so vlan attachments on eth1 reach each
// other. It carries no address: the root netns never takes part in pod traffic on it.
import { inNetns, linkExists, run } from './sh.ts';
import type { LabNode, LabState } from './state.ts';

/** Node-side names; attachments in the lab name these as master/device. */
export const DATA_NIC = 'eth1';
export const HOST_DEVICE = 'hdev0';

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

/** eth1 and hdev0 in the node's netns, both with their peers on the data bridge. */
export function createDataNics(s: LabState, node: LabNode): void {
  const br = dataBridgeName(s);
  const i = nodeIndex(s, node);
  for (const [rootEnd, nodeEnd] of [
    [`${s.prefix}-d${i}`, DATA_NIC],
    [`${s.prefix}-h${i}`, HOST_DEVICE],
  ] as const) {
    run(['ip', 'link', 'add', rootEnd, 'type', 'veth', 'peer', 'name', nodeEnd, 'netns', node.netns]);
    run(['ip', 'link', 'set', rootEnd, 'master', br]);
    run(['ip', 'link', 'set', rootEnd, 'up']);
    run(inNetns(node.netns, ['ip', 'link', 'set', nodeEnd, 'up']));
  }
}
