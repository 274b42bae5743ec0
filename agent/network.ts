// Programs this node for the ClusterNetwork: forwarding sysctls, the backend towards every peer
// (vxlan device with static FDB/neighbours/routes, or host-gw routes), and masquerade. One
// `reconcile()` reads everything from the agent's watch caches and converges the kernel by difference; it is
// safe to run at any time and after a restart (nothing is flushed). It also holds the node's
// readiness as STATUS and NodeNetworkStatus report it.
import { backendMtu, type BackendMode, type ClusterNetwork } from '../src/api/clusternetwork.ts';
import type { BgpStatus, KernelFeatures } from '../src/api/nodestatus.ts';
import { enableRouting } from '../src/dataplane/forwarding.ts';
import { applyMasquerade, removeMasquerade, type MasqueradeSpec } from '../src/dataplane/masquerade.ts';
import {
  deleteLink,
  ensureVxlanDevice,
  syncBgp,
  syncHostGw,
  syncVxlan,
  vtepMacFor,
} from '../src/dataplane/peers.ts';
import type { Logger } from '../src/log/logger.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { LearnedRouteMirror } from '../src/dataplane/route-mirror.ts';
import { BGP_KERNEL_TABLE, BirdConfigError } from '../src/routing/index.ts';
import type { AgentCaches } from './caches.ts';
import type { AgentConfig } from './config.ts';
import { BgpRouting } from './bgp.ts';
import { BirdDaemon, BirdError } from './bgp-daemon.ts';
import {
  allNodeAddresses,
  kernelBlocker,
  nodeAddresses,
  planPeers,
  splitOnLink,
  type NodeObject,
} from './plan.ts';
import { ipJsonBatch, type IpAddr } from '../src/dataplane/ip.ts';

export interface NetworkState {
  ready: boolean;
  /** Machine-readable reason when not ready (e.g. KernelModuleMissing). */
  reason: string;
  message: string;
  backend: BackendMode;
  nodeIP: string;
  /** host-gw peers not on this node's segment (their pods are unreachable from here). */
  unreachablePeers?: string[];
  /** The BGP speaker's sessions (mode bgp). */
  bgp?: BgpStatus;
  vtepMAC?: string;
  mtu: number;
  clusterCidrs: string[];
  ownBlocks: string[];
  peers: number;
  generation?: number;
}

export class NodeNetwork {
  private readonly kube: KubeClient;
  private readonly caches: AgentCaches;
  private readonly cfg: AgentConfig;
  private readonly log: Logger;
  readonly kernel: KernelFeatures;
  readonly vxlanDevice: string;
  readonly nftTable: string;
  state: NetworkState;
  /** The ClusterNetwork as last read (MTU, pools). */
  clusterNetwork: ClusterNetwork | undefined;
  private lastMasq = '';
  private readonly listeners: (() => void)[] = [];
  private bgp: BgpRouting | undefined;
  private mirror: LearnedRouteMirror | undefined;
  /** Set by teardown: a reconcile still queued must not re-create what teardown removed. */
  private closed = false;
  /** The reconcile in flight (passes never overlap, and teardown waits for the last one). */
  private running: Promise<void> = Promise.resolve();

  constructor(kube: KubeClient, caches: AgentCaches, cfg: AgentConfig, kernel: KernelFeatures, log: Logger) {
    this.kube = kube;
    this.caches = caches;
    this.cfg = cfg;
    this.kernel = kernel;
    this.log = log;
    this.vxlanDevice = `${cfg.devicePrefix}.vxlan`;
    this.nftTable = cfg.devicePrefix === 'trl' ? 'trellis_nat' : `trellis_nat_${cfg.devicePrefix}`;
    this.state = {
      ready: false,
      reason: 'Starting',
      message: 'the agent has not programmed this node yet',
      backend: 'vxlan',
      nodeIP: '',
      mtu: 1450,
      clusterCidrs: [],
      ownBlocks: [],
      peers: 0,
    };
  }

  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  private setState(next: NetworkState): void {
    const before = JSON.stringify(this.state);
    this.state = next;
    if (JSON.stringify(next) !== before) for (const fn of this.listeners) fn();
  }

  private notReady(reason: string, message: string, extra: Partial<NetworkState> = {}): void {
    if (this.state.reason !== reason) this.log.warn({ reason }, message);
    this.setState({ ...this.state, ...extra, ready: false, reason, message });
  }

  /** Programs the node from the caches; a no-op once teardown has started. */
  reconcile(): Promise<void> {
    const pass = this.running.then(() => (this.closed ? undefined : this.reconcileOnce()));
    this.running = pass.catch(() => undefined);
    return pass;
  }

  private async reconcileOnce(): Promise<void> {
    await Promise.all([
      this.caches.clusterNetwork.synced,
      this.caches.nodes.synced,
      this.caches.blocks.synced,
      this.caches.statuses.synced,
    ]);
    const cn: ClusterNetwork | undefined = this.caches.clusterNetwork.get(this.cfg.clusterNetwork);
    if (!cn?.spec) {
      this.notReady(
        'ClusterNetworkNotFound',
        `ClusterNetwork ${this.cfg.clusterNetwork} does not exist (TRELLIS_CLUSTER_NETWORK)`,
      );
      return;
    }
    this.clusterNetwork = cn;
    const backend = cn.spec.backend?.mode ?? 'vxlan';
    const mtu = backendMtu(cn.spec.backend);
    const clusterCidrs = (cn.spec.pools ?? []).map((p) => p.cidr);
    const base = { backend, mtu, clusterCidrs, generation: cn.metadata.generation };

    const self = this.caches.nodes.get(this.cfg.nodeName);
    if (!self) {
      // A deleted node must stop announcing its blocks (a graceful stop, so peers withdraw at once).
      await this.leaveBgp(true);
      this.notReady('NodeNotFound', `Node ${this.cfg.nodeName} does not exist (NODE_NAME)`, base);
      return;
    }
    const addrs = nodeAddresses(self);
    const nodeIP = addrs.v4 ?? addrs.v6;
    if (!nodeIP) {
      this.notReady(
        'NodeAddressMissing',
        `Node ${this.cfg.nodeName} has no InternalIP in status.addresses`,
        base,
      );
      return;
    }
    const masquerade = cn.spec.masquerade !== false;
    const blocked = kernelBlocker(backend, masquerade, this.kernel);
    if (blocked) {
      this.notReady(blocked.reason, blocked.message, { ...base, nodeIP });
      return;
    }

    const nodes: NodeObject[] = this.caches.nodes.list();
    const plan = planPeers(
      this.cfg.nodeName,
      cn,
      nodes,
      this.caches.blocks.list(),
      this.caches.statuses.list(),
    );

    let vtepMAC: string | undefined;
    let peers: number;
    let offLinkPeers: string[] = [];
    if (backend !== 'bgp') await this.leaveBgp(false);
    if (backend === 'bgp') {
      enableRouting();
      await deleteLink(this.vxlanDevice);
      // Blackholes for our own blocks, and BIRD's learned routes copied from its table into main,
      // all with our protocol number (route-mirror.ts says why BIRD cannot write them there itself).
      this.mirror ??= new LearnedRouteMirror(BGP_KERNEL_TABLE, this.log.child({ part: 'bgp-routes' }));
      await this.mirror.start();
      await this.mirror.setOwnBlocks(plan.ownBlocks);
      this.bgp ??= new BgpRouting(this.kube, this.cfg.stateDir, this.log.child({ part: 'bgp' }));
      try {
        peers = await this.bgp.program(cn, self, nodes, plan.ownBlocks);
      } catch (err: unknown) {
        if (err instanceof BirdConfigError) {
          this.notReady('BGPConfigInvalid', err.message, { ...base, nodeIP });
          return;
        }
        if (err instanceof BirdError) {
          this.notReady('BGPSpeakerFailed', err.message, { ...base, nodeIP });
          return;
        }
        throw err;
      }
    } else if (backend === 'vxlan') {
      enableRouting([this.vxlanDevice]);
      vtepMAC = await ensureVxlanDevice({
        name: this.vxlanDevice,
        vni: cn.spec.backend.vni ?? 4096,
        port: cn.spec.backend.port ?? 4789,
        localIP: nodeIP,
        mtu,
        mac: vtepMacFor(nodeIP),
      });
      enableRouting([this.vxlanDevice]);
      peers = await syncVxlan(this.vxlanDevice, plan);
    } else {
      enableRouting();
      await deleteLink(this.vxlanDevice);
      const [addrs] = (await ipJsonBatch(['addr show'])) as [IpAddr[]];
      const { onLink, offLink } = splitOnLink(
        plan.peers,
        addrs.flatMap((a) => a.addr_info),
      );
      offLinkPeers = offLink.map((p) => `${p.name} (${p.nodeIP})`);
      peers = await syncHostGw({ ...plan, peers: onLink });
    }

    if (masquerade) {
      const spec: MasqueradeSpec = {
        table: this.nftTable,
        clusterCidrs,
        nodeAddresses: allNodeAddresses(nodes),
      };
      const key = JSON.stringify(spec);
      if (key !== this.lastMasq) {
        await applyMasquerade(spec);
        this.lastMasq = key;
      }
    } else if (this.lastMasq !== 'off') {
      await removeMasquerade(this.nftTable);
      this.lastMasq = 'off';
    }

    const next: NetworkState = {
      ...base,
      ready: true,
      reason: 'Programmed',
      message: offLinkPeers.length
        ? `${backend} programmed towards ${peers} peer(s); UNREACHABLE (not on this node's segment, host-gw cannot route to them; use backend bgp or vxlan): ${offLinkPeers.join(', ')}`
        : `${backend} programmed towards ${peers} peer(s)`,
      nodeIP,
      ownBlocks: plan.ownBlocks,
      peers,
    };
    if (vtepMAC) next.vtepMAC = vtepMAC;
    if (offLinkPeers.length) next.unreachablePeers = offLinkPeers;
    if (backend === 'bgp' && this.state.bgp) next.bgp = this.state.bgp;
    if (!this.state.ready)
      this.log.info({ backend, nodeIP, peers, blocks: plan.ownBlocks }, 'node programmed');
    this.setState(next);
  }

  /** Reads the BGP sessions from the speaker into the state (a change triggers a status report). */
  async refreshBgp(): Promise<void> {
    if (!this.bgp || !this.state.ready || this.state.backend !== 'bgp') return;
    this.setState({ ...this.state, bgp: await this.bgp.status() });
  }

  /**
   * No BGP here any more (backend changed, node deleted, uninstalled): BIRD stops gracefully (BGP
   * Cease, so peers withdraw this node's blocks at once), its table is emptied, and with
   * `withdraw` the learned copies leave main (a backend change instead lets the new backend's
   * sync replace them). A BIRD left by an earlier agent is found through its control socket.
   */
  private async leaveBgp(withdraw: boolean): Promise<void> {
    const daemon = this.bgp?.daemon ?? new BirdDaemon(this.cfg.stateDir, this.log.child({ part: 'bgp' }));
    if (!this.bgp && !this.mirror && !daemon.mayRun()) return;
    await daemon.stop();
    this.bgp = undefined;
    const mirror = this.mirror ?? new LearnedRouteMirror(BGP_KERNEL_TABLE);
    this.mirror = undefined;
    await mirror.stopAndFlush();
    if (withdraw) await syncBgp(this.state.ownBlocks, []);
  }

  /** Removes node-wide programming (not pods): used only when the agent is uninstalled for good. */
  async teardown(): Promise<void> {
    this.closed = true;
    await this.running;
    await this.leaveBgp(true);
    await deleteLink(this.vxlanDevice);
    await removeMasquerade(this.nftTable);
  }
}
