// The BGP routing driver (backend.mode bgp): from the ClusterNetwork, this node and the other nodes,
// plan the sessions, render BIRD's configuration (src/routing) and have the daemon run it
// (bgp-daemon.ts); read the sessions back for NodeNetworkStatus. Peer passwords are read from
// their Secrets here, at the edge, and reach the config only through src/routing's validation.
import type { ClusterNetwork } from '../src/api/clusternetwork.ts';
import type { BgpStatus } from '../src/api/nodestatus.ts';
import type { KubeClient } from '../src/kube/client.ts';
import { Builtin } from '../src/kube/resource.ts';
import type { Logger } from '../src/log/logger.ts';
import {
  BirdConfigError,
  DEFAULT_GRACEFUL_RESTART_SECONDS,
  establishedCount,
  planSessions,
  renderBirdConfig,
  type BirdSession,
} from '../src/routing/index.ts';
import { BirdDaemon } from './bgp-daemon.ts';
import { nodeAddresses, type NodeObject } from './plan.ts';

type SecretObject = { data?: Record<string, string> };

export class BgpRouting {
  private readonly kube: KubeClient;
  private readonly log: Logger;
  readonly daemon: BirdDaemon;
  private planned: BirdSession[] = [];
  routerID = '';

  constructor(kube: KubeClient, stateDir: string, log: Logger) {
    this.kube = kube;
    this.log = log;
    this.daemon = new BirdDaemon(stateDir, log);
  }

  /** Programs the speaker; returns the number of sessions configured. Throws BirdConfigError for user errors. */
  async program(
    cn: ClusterNetwork,
    self: NodeObject,
    nodes: NodeObject[],
    ownBlocks: string[],
  ): Promise<number> {
    const bgp = cn.spec?.backend?.bgp;
    if (!bgp) throw new BirdConfigError('backend.mode is bgp but backend.bgp is missing');
    const addr = nodeAddresses(self);
    if (!addr.v4)
      throw new BirdConfigError(`node ${self.metadata.name} needs an IPv4 InternalIP for the BGP router id`);
    const passwords = await this.passwords(cn);
    const sessions = planSessions(
      bgp,
      { name: self.metadata.name, labels: self.metadata.labels ?? {}, address: addr.v4 },
      nodes.flatMap((n) => {
        const a = nodeAddresses(n).v4;
        return a ? [{ name: n.metadata.name, address: a }] : [];
      }),
      passwords,
    );
    const text = renderBirdConfig({
      node: self.metadata.name,
      clusterNetwork: cn.metadata.name,
      routerId: addr.v4,
      asNumber: bgp.asNumber,
      gracefulRestartSeconds: bgp.gracefulRestartSeconds ?? DEFAULT_GRACEFUL_RESTART_SECONDS,
      ownBlocks,
      pools: (cn.spec?.pools ?? []).map((p) => p.cidr),
      sessions,
    });
    const what = await this.daemon.apply(text);
    if (what !== 'unchanged')
      this.log.info({ sessions: sessions.map((s) => s.name), what }, 'BGP speaker configured');
    this.planned = sessions;
    this.routerID = addr.v4;
    return sessions.length;
  }

  /** Stops announcing (the node is gone): peers withdraw its blocks at once. */
  async stop(): Promise<void> {
    this.planned = [];
    await this.daemon.stop();
  }

  /** Session state from the daemon, with the planned peer AS filled in for sessions the daemon has not reported. */
  async status(): Promise<BgpStatus> {
    const sessions = await this.daemon.sessions();
    const byName = new Map(sessions.map((s) => [s.name, s]));
    for (const p of this.planned) {
      if (!byName.has(p.name))
        sessions.push({
          name: p.name,
          kind: p.kind,
          peerAddress: p.address,
          peerAS: p.asNumber,
          state: 'Unknown',
          established: false,
          reason: 'configured but not reported by the speaker yet',
        });
    }
    sessions.sort((a, b) => a.name.localeCompare(b.name));
    const out: BgpStatus = { established: establishedCount(sessions), sessions };
    if (this.routerID) out.routerID = this.routerID;
    return out;
  }

  private async passwords(cn: ClusterNetwork): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const [i, p] of (cn.spec?.backend?.bgp?.peers ?? []).entries()) {
      const ref = p.password?.secretKeyRef;
      if (!ref) continue;
      const namespace = ref.namespace ?? process.env.POD_NAMESPACE;
      if (!namespace)
        throw new BirdConfigError(
          `backend.bgp.peers[${i}].password.secretKeyRef.namespace is not set and the agent does not know its namespace`,
        );
      let secret: SecretObject | undefined;
      try {
        secret = (await this.kube.getOrUndefined(Builtin.Secret, ref.name, namespace)) as
          SecretObject | undefined;
      } catch (err: unknown) {
        throw new BirdConfigError(
          `backend.bgp.peers[${i}].password: cannot read Secret ${namespace}/${ref.name}: ${String(err)}`,
        );
      }
      const b64 = secret?.data?.[ref.key];
      if (b64 === undefined)
        throw new BirdConfigError(
          `backend.bgp.peers[${i}].password: Secret ${namespace}/${ref.name} has no key ${ref.key}`,
        );
      out.set(p.address, Buffer.from(b64, 'base64').toString('utf8'));
    }
    return out;
  }
}
