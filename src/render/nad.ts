// One NetworkAttachmentDefinition per attachment. Its spec.config is the delegate's CNI conflist
// (a Debian reference plugin: macvlan, ipvlan, bridge, host-device or vlan, then tuning) with our
// plugin as IPAM, so the addresses come from the attachment's cluster-wide pool `attachment:<name>`.
import type { Attachment, ClusterNetwork } from '../api/clusternetwork.ts';
import type { KubeObject } from '../kube/object.ts';
import { canonicalJson } from './canonical.ts';
import { CONFLIST_CNI_VERSION } from './conflist.ts';
import { commonLabels } from './names.ts';
import { agentPaths } from './paths.ts';
import { renderData } from './templates.ts';

export const DEFAULT_ATTACHMENT_NAMESPACE = 'default';

/** IPAM pool name of an attachment, as the agent and IPAM know it. */
export function attachmentPoolName(attachment: Pick<Attachment, 'name'>): string {
  return `attachment:${attachment.name}`;
}

/** Linux bridge name for a bridge attachment without one: fits IFNAMSIZ (15 characters). */
export function defaultBridgeName(attachment: Pick<Attachment, 'name'>): string {
  return `br-${attachment.name}`.slice(0, 15);
}

export interface NadConfig {
  cniVersion: string;
  name: string;
  plugins: { type: string; [key: string]: unknown }[];
}

export function nadConfigFor(cn: ClusterNetwork, a: Attachment): NadConfig {
  return renderData<NadConfig>('nad-config.json', {
    cniVersion: CONFLIST_CNI_VERSION,
    name: a.name,
    type: a.type,
    master: a.type === 'macvlan' || a.type === 'ipvlan' || a.type === 'vlan' ? a.master : undefined,
    device: a.type === 'host-device' ? a.master : undefined,
    mode:
      a.type === 'macvlan' ? (a.mode ?? 'bridge') : a.type === 'ipvlan' ? (a.ipvlanMode ?? 'l2') : undefined,
    bridge: a.type === 'bridge' ? (a.bridge ?? defaultBridgeName(a)) : undefined,
    vlanId: a.type === 'vlan' ? a.vlanId : undefined,
    // host-device moves the interface as it is; its MTU is the device's own.
    mtu: a.type === 'host-device' ? undefined : a.mtu,
    ipam: a.pool
      ? { type: 'trellis', pool: attachmentPoolName(a), socket: agentPaths(cn).socketPath }
      : undefined,
  });
}

export function renderAttachments(cn: ClusterNetwork): KubeObject[] {
  return (cn.spec?.attachments ?? []).map((a) =>
    renderData<KubeObject>('nad.yaml', {
      name: a.name,
      namespace: a.namespace ?? DEFAULT_ATTACHMENT_NAMESPACE,
      labels: commonLabels(cn),
      config: canonicalJson(nadConfigFor(cn, a)).trimEnd(),
    }),
  );
}
