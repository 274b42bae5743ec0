// A program's set of watch caches, shared: asking twice for the same resource and selectors gives
// the same informer, so the framework, the status writer and drift repair read one copy of each
// kind and the API server serves one watch. Start them together, wait for all to sync, stop all.
import type { Logger } from '../log/logger.ts';
import type { KubeClient } from './client.ts';
import { createInformer, type Informer, type InformerOptions, type InformerStats } from './informer.ts';
import type { KubeObject } from './object.ts';
import type { Resource } from './resource.ts';

export type InformerSpec<S extends KubeObject> = Omit<InformerOptions<S>, 'kube' | 'resource' | 'logger'>;

export class InformerSet {
  private readonly kube: KubeClient;
  private readonly logger: Logger | undefined;
  private readonly byKey = new Map<string, Informer<KubeObject>>();
  private started = false;

  constructor(kube: KubeClient, logger?: Logger) {
    this.kube = kube;
    this.logger = logger;
  }

  /**
   * The informer for this resource and scope, created on first use. `transform` and `indexers` take
   * effect only on creation; later callers add indexes with addIndexer().
   */
  for<S extends KubeObject = KubeObject>(resource: Resource, spec: InformerSpec<S> = {}): Informer<S> {
    const key = [
      resource.group,
      resource.version,
      resource.plural,
      spec.namespace,
      spec.labelSelector,
      spec.fieldSelector,
    ]
      .map((x) => x ?? '')
      .join('|');
    let inf = this.byKey.get(key) as Informer<S> | undefined;
    if (!inf) {
      inf = createInformer<S>({
        ...spec,
        kube: this.kube,
        resource,
        ...(this.logger ? { logger: this.logger.child({ cache: resource.plural }) } : {}),
      });
      this.byKey.set(key, inf as unknown as Informer<KubeObject>);
      if (this.started) inf.start();
    }
    return inf;
  }

  start(): void {
    this.started = true;
    for (const inf of this.byKey.values()) inf.start();
  }

  /** Resolves when every informer created so far has delivered its first list. */
  async synced(): Promise<void> {
    await Promise.all([...this.byKey.values()].map((i) => i.synced));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.byKey.values()].map((i) => i.stop()));
  }

  stats(): Record<string, InformerStats> {
    const out: Record<string, InformerStats> = {};
    for (const [key, inf] of this.byKey) out[key] = inf.stats();
    return out;
  }
}
