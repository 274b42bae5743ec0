// Registration: `registry.on.create(resource, policy, fn)` and friends only build a frozen handler
// record and store it. Nothing runs here; the controller reads the records when it processes
// objects. Ids must be unique per resource because they key the persisted progress.
import type { Resource } from '../kube/resource.ts';
import type {
  AnyHandler,
  ChangeHandler,
  EventHandler,
  EventKwargs,
  EventPolicy,
  HandlerFn,
  HandlerPolicy,
  TimerHandler,
  TimerPolicy,
} from './handler.ts';

/** Which objects of a resource the operator watches. */
export interface WatchScope {
  /** Only this namespace. @default all namespaces */
  namespace?: string;
  /** Only objects matching this label selector. @default all objects */
  labelSelector?: string;
}

export function resourceKey(r: Resource): string {
  return `${r.plural}.${r.group}/${r.version}`;
}

export class Registry {
  private readonly handlers: AnyHandler[] = [];
  private readonly scopes = new Map<string, WatchScope>();
  private readonly resources = new Map<string, Resource>();

  readonly on = {
    create: (r: Resource, policy: HandlerPolicy, fn: HandlerFn): ChangeHandler =>
      this.addChange('create', r, policy, fn),
    update: (r: Resource, policy: HandlerPolicy, fn: HandlerFn): ChangeHandler =>
      this.addChange('update', r, policy, fn),
    delete: (r: Resource, policy: HandlerPolicy, fn: HandlerFn): ChangeHandler =>
      this.addChange('delete', r, policy, fn),
    resume: (r: Resource, policy: HandlerPolicy, fn: HandlerFn): ChangeHandler =>
      this.addChange('resume', r, policy, fn),
    timer: (r: Resource, policy: TimerPolicy, fn: HandlerFn): TimerHandler => {
      if (!(policy.interval > 0))
        throw new Error(`timer ${policy.id}: interval must be a positive number of seconds`);
      const h: TimerHandler = Object.freeze({
        kind: 'timer',
        id: policy.id,
        resource: r,
        interval: policy.interval,
        initialDelay: policy.initialDelay ?? policy.interval,
        fn,
      });
      return this.add(h);
    },
    event: (r: Resource, policy: EventPolicy, fn: (kwargs: EventKwargs) => Promise<unknown>): EventHandler =>
      this.add(Object.freeze({ kind: 'event', id: policy.id, resource: r, fn })),
  };

  /** Narrows what is watched for a resource (a namespace, a label selector). */
  scope(r: Resource, scope: WatchScope): void {
    this.resources.set(resourceKey(r), r);
    this.scopes.set(resourceKey(r), { ...scope });
  }

  scopeOf(r: Resource): WatchScope {
    return this.scopes.get(resourceKey(r)) ?? {};
  }

  /** Every resource with at least one handler. */
  watchedResources(): Resource[] {
    const keys = new Set(this.handlers.map((h) => resourceKey(h.resource)));
    return [...keys].map((k) => this.resources.get(k) as Resource);
  }

  changeHandlers(r: Resource, reason?: ChangeHandler['reason']): ChangeHandler[] {
    const key = resourceKey(r);
    return this.handlers.filter(
      (h): h is ChangeHandler =>
        h.kind === 'change' && resourceKey(h.resource) === key && (!reason || h.reason === reason),
    );
  }

  timers(r: Resource): TimerHandler[] {
    const key = resourceKey(r);
    return this.handlers.filter(
      (h): h is TimerHandler => h.kind === 'timer' && resourceKey(h.resource) === key,
    );
  }

  eventHandlers(r: Resource): EventHandler[] {
    const key = resourceKey(r);
    return this.handlers.filter(
      (h): h is EventHandler => h.kind === 'event' && resourceKey(h.resource) === key,
    );
  }

  private addChange(
    reason: ChangeHandler['reason'],
    r: Resource,
    policy: HandlerPolicy,
    fn: HandlerFn,
  ): ChangeHandler {
    const h: ChangeHandler = Object.freeze({
      kind: 'change',
      reason,
      resource: r,
      fn,
      id: policy.id,
      retries: policy.retries ?? Infinity,
      backoff: policy.backoff ?? 5,
      backoffCap: policy.backoffCap ?? 300,
      timeout: policy.timeout,
      field: policy.field,
    });
    return this.add(h);
  }

  private add<H extends AnyHandler>(h: H): H {
    if (!h.id) throw new Error(`a ${h.kind} handler for ${h.resource.kind} needs an id`);
    const key = resourceKey(h.resource);
    if (this.handlers.some((o) => o.id === h.id && resourceKey(o.resource) === key)) {
      throw new Error(
        `handler id "${h.id}" is registered twice for ${h.resource.kind}; ids must be unique per resource`,
      );
    }
    this.resources.set(key, h.resource);
    this.handlers.push(h);
    return h;
  }
}
