// The CNI conflist every node gets: our plugin, then Debian's reference portmap chained after it.
// The text is canonical JSON so its hash (on the DaemonSet's pod template) changes only when the
// content does, and a changed conflist rolls the agents.
import { createHash } from 'node:crypto';
import { backendMtu, type ClusterNetwork } from '../api/clusternetwork.ts';
import { canonicalJson } from './canonical.ts';
import { namesFor } from './names.ts';
import { agentPaths } from './paths.ts';
import { renderData } from './templates.ts';

/** Data key in the ConfigMap and file name on the host; `10-` sorts it before most other CNI configs. */
export const CONFLIST_KEY = '10-trellis.conflist';

/**
 * The conflist's cniVersion. The runtime hands it to every plugin of the chain, and Debian's
 * containernetworking-plugins 1.1.1 (our chained portmap and the attachment delegates) accept at
 * most 1.0.0: "incompatible CNI versions; config is 1.1.0". Our plugin speaks 1.1 and accepts 1.0.0.
 * Raise this when the reference plugins on the hosts support 1.1.0 (plugins v1.5+); until then
 * `spec.agent.cniVersion: 1.1.0` asks for it per ClusterNetwork (STATUS and GC from the runtime).
 */
export const CONFLIST_CNI_VERSION = '1.0.0';

export interface ConflistPlugin {
  type: string;
  [key: string]: unknown;
}

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: ConflistPlugin[];
}

export function conflistFor(cn: ClusterNetwork): Conflist {
  return renderData<Conflist>('conflist.json', {
    cniVersion: cn.spec?.agent?.cniVersion ?? CONFLIST_CNI_VERSION,
    network: namesFor(cn).network,
    socket: agentPaths(cn).socketPath,
    mtu: backendMtu(cn.spec?.backend),
    clusterNetwork: cn.metadata.name,
  });
}

/** The conflist as the file text the agent installs (canonical JSON). */
export function conflistText(cn: ClusterNetwork): string {
  return canonicalJson(conflistFor(cn));
}

export function conflistHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
