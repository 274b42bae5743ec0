// From a pod's network selections to the attachments to run: each selection's
// NetworkAttachmentDefinition (the pod's namespace unless one is named), its CNI config as a
// conflist, the interface name (net1, net2, ... by position unless given), and the runtime
// capability arguments (ips, mac, portMappings, bandwidth) libcni hands to plugins that declare
// them. Pure: NAD lookup is a function the caller backs with its watch cache.
import { NetworkConfigError, toConfList, type NetworkConfigList } from '../cni/runner-config.ts';
import type { KubeObject } from '../kube/object.ts';
import type { NetworkSelection } from './annotation.ts';

export const NAD_API_VERSION = 'k8s.cni.cncf.io/v1';

export interface NadSpec {
  /** The delegate's CNI config (a conf or a conflist) as JSON text. */
  config?: string;
}

export type NetworkAttachmentDefinition = KubeObject<NadSpec>;

/** A request that cannot be served as written (missing NAD, duplicate interface...). */
export class AttachmentRequestError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AttachmentRequestError';
  }
}

export interface AttachmentPlan {
  selection: NetworkSelection;
  /** NAD namespace and name. */
  namespace: string;
  name: string;
  /** "namespace/name", the network-status name. */
  key: string;
  ifname: string;
  config: NetworkConfigList;
  /** libcni capability args; the runner passes each only to plugins that declare it. */
  capabilityArgs: Record<string, unknown>;
}

/** Default interface name of the element at `index` (0-based): net1, net2, ... (as Multus). */
export function defaultInterfaceName(index: number): string {
  return `net${index + 1}`;
}

/**
 * Where a NAD with no spec.config finds its network (NPWG): a conf dir on the node, searched for a
 * conflist or conf whose "name" is the NAD's name.
 */
export interface OnDiskConfigs {
  dir: string;
  load: (name: string) => NetworkConfigList | undefined;
}

export function resolveAttachments(
  selections: NetworkSelection[],
  podNamespace: string,
  primaryIfname: string,
  lookup: (namespace: string, name: string) => NetworkAttachmentDefinition | undefined,
  onDisk?: OnDiskConfigs,
): AttachmentPlan[] {
  const used = new Map<string, string>([[primaryIfname, 'the pod network']]);
  const plans: AttachmentPlan[] = [];
  for (const sel of selections) {
    const namespace = sel.namespace ?? podNamespace;
    const key = `${namespace}/${sel.name}`;
    const where = `network ${sel.index + 1} (${key})`;
    const ifname = sel.interface ?? defaultInterfaceName(sel.index);
    const taken = used.get(ifname);
    if (taken) {
      throw new AttachmentRequestError(
        `${where}: interface name ${ifname} is already used by ${taken}; give each network its own "interface" (or @name)`,
      );
    }
    used.set(ifname, `network ${sel.index + 1} (${key})`);
    const nad = lookup(namespace, sel.name);
    if (!nad) {
      throw new AttachmentRequestError(
        `${where}: NetworkAttachmentDefinition ${key} does not exist; create it or fix the name in the annotation`,
      );
    }
    const text = nad.spec?.config;
    let config: NetworkConfigList;
    if (!text || text.trim() === '') {
      // NPWG: with no spec.config, the network is the on-disk config named like the NAD.
      const found = onDisk?.load(sel.name);
      if (!found) {
        throw new AttachmentRequestError(
          `${where}: NetworkAttachmentDefinition ${key} has no spec.config` +
            (onDisk
              ? ` and ${onDisk.dir} on this node has no CNI config named "${sel.name}"; put the config in spec.config or in a .conflist/.conf there with that "name"`
              : '; put the CNI config in spec.config'),
        );
      }
      config = found;
    } else {
      try {
        let raw: unknown;
        try {
          raw = JSON.parse(text);
        } catch (err: unknown) {
          throw new NetworkConfigError(
            `spec.config is not valid JSON (${err instanceof Error ? err.message : String(err)})`,
          );
        }
        config = toConfList(raw, 'spec.config');
      } catch (err: unknown) {
        throw new AttachmentRequestError(
          `${where}: NetworkAttachmentDefinition ${key}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
    // NPWG 4.1.2.1.3/4: requested addresses and MAC reach the delegate twice, as libcni
    // capability args (only plugins declaring "ips"/"mac" get them) and as args.cni (static,
    // tuning, macvlan and our IPAM read them there); the ADD then checks the result honoured them.
    const capabilityArgs: Record<string, unknown> = {};
    const cniArgs: Record<string, unknown> = { ...(sel.cniArgs ?? {}) };
    if (sel.ips?.length) capabilityArgs.ips = cniArgs.ips = sel.ips;
    if (sel.mac) capabilityArgs.mac = cniArgs.mac = sel.mac;
    if (sel.portMappings?.length) capabilityArgs.portMappings = sel.portMappings;
    if (sel.bandwidth) capabilityArgs.bandwidth = sel.bandwidth;
    if (Object.keys(cniArgs).length) {
      // Multus convention: `cni-args` reach every plugin of the delegate as args.cni.
      config = {
        ...config,
        plugins: config.plugins.map((p) => ({
          ...p,
          args: { ...((p.args as Record<string, unknown> | undefined) ?? {}), cni: cniArgs },
        })),
      };
    }
    plans.push({
      selection: sel,
      namespace,
      name: sel.name,
      key,
      ifname,
      config,
      capabilityArgs,
    });
  }
  return plans;
}
