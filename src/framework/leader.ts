// Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it: a candidate takes
// the lease when it is free or expired, the holder renews it every retry period, and every write is
// guarded by the lease's resourceVersion so two candidates can never both win. A holder that cannot
// renew within the renew deadline (or finds the lease taken) stops acting at once, before the lease
// it held can expire for anyone else. On shutdown the holder releases the lease so a peer takes over
// without waiting for expiry.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../kube/client.ts';
import { isApiError } from '../kube/errors.ts';
import type { KubeObject } from '../kube/object.ts';
import { Builtin } from '../kube/resource.ts';
import type { Logger } from '../log/logger.ts';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export type Lease = KubeObject<LeaseSpec>;

export interface LeaderElectionOptions {
  kube: KubeClient;
  namespace: string;
  /** Lease name. */
  name: string;
  /** This candidate's identity (pod name, or host + pid). */
  identity: string;
  logger: Logger;
  /** How long a lease is valid after its last renewal. @default 15 */
  leaseDurationSeconds?: number;
  /** The holder gives up leading if it could not renew for this long. @default 10 */
  renewDeadlineSeconds?: number;
  /** Time between acquire/renew attempts. @default 2 */
  retryPeriodSeconds?: number;
  /** Called with true when this process starts leading and false when it stops. */
  onChange?: (leading: boolean) => void;
}

/** The abort reason when leadership is lost: work in flight must not write anything afterwards. */
export class LeadershipLost extends Error {
  constructor(lease: string) {
    super(`lost the lease ${lease}`);
    this.name = 'LeadershipLost';
  }
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectionOptions, 'onChange'>> &
    Pick<LeaderElectionOptions, 'onChange'>;

  constructor(opts: LeaderElectionOptions) {
    this.o = { leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2, ...opts };
    if (this.o.renewDeadlineSeconds >= this.o.leaseDurationSeconds) {
      throw new Error('leader election: renewDeadlineSeconds must be shorter than leaseDurationSeconds');
    }
  }

  /**
   * Campaigns until the signal aborts. While leading, `lead` runs with a signal that aborts the
   * moment leadership is lost; after it settles the process campaigns again.
   */
  async run(signal: AbortSignal, lead: (leading: AbortSignal) => Promise<void>): Promise<void> {
    const { logger, retryPeriodSeconds } = this.o;
    while (!signal.aborted) {
      let acquired = false;
      try {
        acquired = await this.tryAcquireOrRenew();
      } catch (err: unknown) {
        // The API server is unreachable or unhappy: keep campaigning, never crash over it.
        logger.warn({ err, lease: this.o.name }, 'could not read or write the lease; will retry');
      }
      if (!acquired) {
        await pause(retryPeriodSeconds * 1000 + Math.random() * 200, signal);
        continue;
      }
      logger.info({ lease: this.o.name, identity: this.o.identity }, 'became leader');
      this.o.onChange?.(true);
      const leading = new AbortController();
      const stopLeading = () => leading.abort();
      signal.addEventListener('abort', stopLeading, { once: true });
      let leadError: unknown;
      const work = lead(leading.signal)
        .catch((err: unknown) => {
          leadError = err;
        })
        .finally(() => leading.abort());
      await this.renewWhileLeading(leading.signal);
      // renewWhileLeading returns un-aborted only when the lease is lost (taken, or not renewed in time).
      const lost = !leading.signal.aborted;
      if (lost) leading.abort(new LeadershipLost(this.o.name));
      else leading.abort();
      await work;
      signal.removeEventListener('abort', stopLeading);
      this.o.onChange?.(false);
      if (lost) {
        logger.warn({ lease: this.o.name, identity: this.o.identity }, 'lost leadership; stopped acting');
      } else {
        await this.release();
        logger.info({ lease: this.o.name }, 'stopped leading; lease released');
      }
      if (leadError) throw leadError;
    }
  }

  private async renewWhileLeading(leading: AbortSignal): Promise<void> {
    const { retryPeriodSeconds, renewDeadlineSeconds, logger } = this.o;
    let lastRenew = Date.now();
    while (!leading.aborted) {
      await pause(retryPeriodSeconds * 1000, leading);
      if (leading.aborted) return;
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew();
      } catch (err: unknown) {
        logger.warn({ err }, 'lease renewal failed');
      }
      if (ok) {
        lastRenew = Date.now();
        continue;
      }
      if (this.takenByOther || Date.now() - lastRenew > renewDeadlineSeconds * 1000) return;
    }
  }

  private takenByOther = false;

  /** One attempt; true when we hold the lease afterwards. Never overwrites a newer lease. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { kube, namespace, name, identity, leaseDurationSeconds } = this.o;
    const now = new Date();
    this.takenByOther = false;
    const lease = await kube.getOrUndefined<Lease>(Builtin.Lease, name, namespace);
    if (!lease) {
      try {
        await kube.create(Builtin.Lease, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        return true;
      } catch (err: unknown) {
        if (isApiError(err, 409)) return false;
        throw err;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const mine = holder === identity;
    if (holder && !mine && !expired(spec, now)) {
      this.takenByOther = true;
      return false;
    }
    const next: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: mine && spec.acquireTime ? spec.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
    };
    try {
      await kube.replace(Builtin.Lease, { ...lease, spec: next });
      return true;
    } catch (err: unknown) {
      if (isApiError(err, 409)) {
        if (mine) this.takenByOther = false;
        return false;
      }
      throw err;
    }
  }

  /** Gives the lease up (empty holder) if we still hold it, so a peer need not wait for expiry. */
  private async release(): Promise<void> {
    const { kube, namespace, name, identity, logger } = this.o;
    try {
      const lease = await kube.getOrUndefined<Lease>(Builtin.Lease, name, namespace);
      if (!lease || lease.spec?.holderIdentity !== identity) return;
      await kube.replace(Builtin.Lease, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: microTime(new Date()),
        },
      });
    } catch (err: unknown) {
      logger.warn({ err }, 'could not release the lease; peers will take over when it expires');
    }
  }
}

function expired(spec: LeaseSpec, now: Date): boolean {
  const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '');
  if (Number.isNaN(renewed)) return true;
  return renewed + (spec.leaseDurationSeconds ?? 15) * 1000 < now.getTime();
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    // aborted: the caller checks the signal
  }
}
