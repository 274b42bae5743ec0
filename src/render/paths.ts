// Host paths of the agent (from spec.agent, with the CRD's defaults) and where they appear inside
// the agent container. The container side is fixed (the env contract); the host side follows the spec.
import { posix } from 'node:path';
import type { ClusterNetwork } from '../api/clusternetwork.ts';

export const DEFAULT_CNI_CONF_DIR = '/etc/cni/net.d';
export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';
export const DEFAULT_SOCKET_PATH = '/run/trellis/cni.sock';
/** Where the socket's host folder is mounted in the container. */
export const CONTAINER_RUN_DIR = '/run/trellis';

export interface AgentPaths {
  cniConfDir: string;
  cniBinDir: string;
  /** Host path of the CNI socket (what the plugin on the host dials). */
  socketPath: string;
  /** Host folder holding the socket, mounted at CONTAINER_RUN_DIR. */
  socketDir: string;
  /** The socket's path inside the agent container. */
  containerSocket: string;
}

export function agentPaths(cn: ClusterNetwork): AgentPaths {
  const agent = cn.spec?.agent ?? {};
  const socketPath = agent.socketPath ?? DEFAULT_SOCKET_PATH;
  return {
    cniConfDir: agent.cniConfDir ?? DEFAULT_CNI_CONF_DIR,
    cniBinDir: agent.cniBinDir ?? DEFAULT_CNI_BIN_DIR,
    socketPath,
    socketDir: posix.dirname(socketPath),
    containerSocket: posix.join(CONTAINER_RUN_DIR, posix.basename(socketPath)),
  };
}
