// Reports this node's network state as the NodeNetworkStatus object named after the node: peers
// read vtepMAC and nodeIP from it, the operator counts ready nodes, users read it with kubectl.
// Written with server-side apply (field manager trellis-agent) on change and on every heartbeat.
import type { Condition } from '../src/api/clusternetwork.ts';
import { API_VERSION, NodeNetworkStatusResource } from '../src/api/group.ts';
import type { KernelFeatures, NodeNetworkStatusStatus } from '../src/api/nodestatus.ts';
import { missingFeatures } from '../src/dataplane/kernel.ts';
import type { KubeClient } from '../src/kube/client.ts';
import type { Logger } from '../src/log/logger.ts';
import type { NetworkState } from './network.ts';

const FIELD_MANAGER = 'trellis-agent';

export function renderStatus(
  clusterNetwork: string,
  s: NetworkState,
  kernel: KernelFeatures,
  now: Date,
  since: string,
): NodeNetworkStatusStatus {
  const missing = missingFeatures(kernel);
  const conditions: Condition[] = [
    {
      type: 'Ready',
      status: s.ready ? 'True' : 'False',
      reason: s.reason,
      message: s.message,
      lastTransitionTime: since,
    },
    {
      type: 'KernelFeaturesMissing',
      status: missing.length ? 'True' : 'False',
      reason: missing.length ? 'ProbedMissing' : 'AllPresent',
      message: missing.length
        ? `this kernel lacks: ${missing.join(', ')}`
        : 'every probed feature is present',
      lastTransitionTime: since,
    },
  ];
  const status: NodeNetworkStatusStatus = {
    clusterNetwork,
    ready: s.ready,
    nodeIP: s.nodeIP,
    backend: s.backend,
    kernel,
    blocks: s.ownBlocks,
    peers: s.peers,
    conditions,
    lastHeartbeatTime: now.toISOString(),
  };
  if (s.generation !== undefined) status.observedGeneration = s.generation;
  if (s.vtepMAC) status.vtepMAC = s.vtepMAC;
  if (s.backend === 'host-gw') {
    const off = s.unreachablePeers ?? [];
    conditions.push({
      type: 'PeersReachable',
      status: off.length ? 'False' : 'True',
      reason: off.length ? 'PeersOffSegment' : 'AllOnSegment',
      message: off.length
        ? `host-gw cannot route to nodes outside this node's L2 segment; their pods are unreachable from here: ${off.join(', ')} (use backend bgp or vxlan)`
        : "every peer is on this node's segment",
      lastTransitionTime: since,
    });
  }
  if (s.bgp) {
    status.bgp = s.bgp;
    const down = s.bgp.sessions.filter((x) => !x.established);
    conditions.push({
      type: 'BGPSessionsEstablished',
      status: s.bgp.sessions.length > 0 && down.length === 0 ? 'True' : 'False',
      reason: s.bgp.sessions.length === 0 ? 'NoSessions' : down.length ? 'SessionsDown' : 'AllEstablished',
      message:
        s.bgp.sessions.length === 0
          ? 'no BGP session is configured for this node (no mesh and no peer selects it)'
          : down.length
            ? `not established: ${down.map((x) => `${x.peerAddress ?? x.name} (${x.state}: ${x.reason ?? 'no reason given'})`).join('; ')}`
            : `${s.bgp.established} sessions established`,
      lastTransitionTime: since,
    });
  }
  return status;
}

export class StatusReporter {
  private readonly kube: KubeClient;
  private readonly node: string;
  private readonly clusterNetwork: string;
  private readonly kernel: KernelFeatures;
  private readonly log: Logger;
  private since = new Date().toISOString();
  private lastReady: boolean | undefined;
  private created = false;
  private readonly interfaces: () => string[];

  constructor(
    kube: KubeClient,
    node: string,
    clusterNetwork: string,
    kernel: KernelFeatures,
    log: Logger,
    interfaces: () => string[] = () => [],
  ) {
    this.interfaces = interfaces;
    this.kube = kube;
    this.node = node;
    this.clusterNetwork = clusterNetwork;
    this.kernel = kernel;
    this.log = log;
  }

  async report(state: NetworkState): Promise<void> {
    if (state.ready !== this.lastReady) {
      this.since = new Date().toISOString();
      this.lastReady = state.ready;
    }
    const obj = { apiVersion: API_VERSION, kind: 'NodeNetworkStatus', metadata: { name: this.node } };
    if (!this.created) {
      await this.kube.apply(NodeNetworkStatusResource, { ...obj, spec: {} }, { fieldManager: FIELD_MANAGER });
      this.created = true;
    }
    const status = renderStatus(this.clusterNetwork, state, this.kernel, new Date(), this.since);
    status.interfaces = this.interfaces().sort().slice(0, 256);
    await this.kube.apply(
      NodeNetworkStatusResource,
      { ...obj, status },
      { fieldManager: FIELD_MANAGER },
      'status',
    );
    this.log.debug({ ready: state.ready, peers: state.peers }, 'reported NodeNetworkStatus');
  }
}
