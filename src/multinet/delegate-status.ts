// CNI STATUS for the extra networks in use on a node: which delegates cannot run, and what that
// means, in the spec's two codes (CNI 1.1, STATUS):
//   50 "plugin not available": ADD cannot be served. A delegate (or IPAM) binary missing from the
//      CNI bin dir: an ADD asking for that network fails; pods already attached keep their
//      interface (the kernel link does not need the binary), only their DEL waits for it.
//   51 "not available, and existing containers may have limited connectivity": a macvlan/ipvlan/
//      vlan `master` missing on the node. The kernel deletes a master's children with it, so the
//      pods attached to that network have lost the interface, not only new pods.
// host-device's `device` is not judged: while a pod holds it, it lives in the pod, not the node.
// Pure: the caller says which binaries and interfaces exist, and which NAD each network came from.
import { CniErrorCode } from '../cni/errors.ts';
import type { NetworkConfigList } from '../cni/runner-config.ts';

const STATUS_NOT_AVAILABLE = CniErrorCode.PluginNotAvailable;
const STATUS_NOT_AVAILABLE_LIMITED = CniErrorCode.PluginNotAvailableLimited;

/** One CNI network with attachments on this node (from the attachment cache). */
export interface NetworkInUse {
  networkName: string;
  /** The NAD it was attached from ("namespace/name"), when still known. */
  nad?: string;
  config: NetworkConfigList;
  /** Pods attached to it on this node ("namespace/name"). */
  pods: string[];
}

export interface NodeView {
  node: string;
  binDirs: string[];
  /** The plugin types (delegates and IPAM) of `config` whose binary is in no bin dir. */
  missingPlugins: (config: NetworkConfigList) => string[];
  hasInterface: (name: string) => boolean;
}

export interface DelegateProblem {
  code: typeof STATUS_NOT_AVAILABLE | typeof STATUS_NOT_AVAILABLE_LIMITED;
  message: string;
}

export function delegateProblems(networks: NetworkInUse[], view: NodeView): DelegateProblem[] {
  const out: DelegateProblem[] = [];
  for (const n of [...networks].sort((a, b) => a.networkName.localeCompare(b.networkName))) {
    const what = n.nad
      ? `NetworkAttachmentDefinition ${n.nad} (CNI network ${n.networkName})`
      : `CNI network ${n.networkName} (its NetworkAttachmentDefinition is gone)`;
    const { pods, keep } = podList(n.pods);
    const missing = view.missingPlugins(n.config);
    if (missing.length) {
      out.push({
        code: STATUS_NOT_AVAILABLE,
        message:
          `${what} on node ${view.node}: plugin ${missing.map((m) => `"${m}"`).join(', ')} is not in ` +
          `${view.binDirs.join(':')}; install it there (pods asking for this network cannot start ` +
          `until then; ${pods} ${keep} their interface)`,
      });
    }
    for (const p of n.config.plugins) {
      const master = p.master;
      if (p.type === 'host-device' || typeof master !== 'string' || view.hasInterface(master)) continue;
      out.push({
        code: STATUS_NOT_AVAILABLE_LIMITED,
        message:
          `${what} on node ${view.node}: ${p.type} master interface ${master} does not exist, so ` +
          `${pods} lost this network's interface; bring ${master} back and recreate those pods, ` +
          `or set "master" in the NetworkAttachmentDefinition to an interface the node has`,
      });
    }
  }
  return out;
}

/** The STATUS answer for a set of problems: 51 when any existing pod is affected, else 50. */
export function delegateStatus(problems: DelegateProblem[]): DelegateProblem | undefined {
  if (problems.length === 0) return undefined;
  const code = problems.some((p) => p.code === STATUS_NOT_AVAILABLE_LIMITED)
    ? STATUS_NOT_AVAILABLE_LIMITED
    : STATUS_NOT_AVAILABLE;
  return { code, message: `extra networks: ${problems.map((p) => p.message).join('; ')}` };
}

function podList(pods: string[]): { pods: string; keep: string } {
  const sorted = [...new Set(pods)].sort();
  if (sorted.length === 0) return { pods: 'attached pods', keep: 'keep' };
  const shown = sorted.slice(0, 3).join(', ');
  const one = sorted.length === 1;
  return {
    pods: `the ${sorted.length} pod${one ? '' : 's'} attached (${shown}${sorted.length > 3 ? ', ...' : ''})`,
    keep: one ? 'keeps' : 'keep',
  };
}
