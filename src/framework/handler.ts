// Handler records: what a registration produces. A record is frozen data (id, function, policy);
// the registry only collects them and the cycle decides when each one runs. Handlers are plain
// async functions of one keyword object, so they are easy to call from tests.
import type { Logger } from '../log/logger.ts';
import type { KubeObject, ObjectMeta } from '../kube/object.ts';
import type { Resource } from '../kube/resource.ts';
import type { Patch } from './patch.ts';
import type { DiffEntry } from './essence.ts';

/** Why a handler is being called. */
export type Reason = 'create' | 'update' | 'delete' | 'resume' | 'timer' | 'event';

export interface HandlerKwargs {
  body: KubeObject;
  spec: Record<string, unknown>;
  status: Record<string, unknown>;
  meta: ObjectMeta;
  /** Changes to send back; merged into the one patch of this cycle. */
  patch: Patch;
  logger: Logger;
  /** Number of earlier attempts of this handler in this cycle (0 on the first). */
  retry: number;
  reason: Reason;
  /** What changed since the last handled state (update only; empty otherwise). */
  diff: DiffEntry[];
  /** The watched field's previous and current value (handlers with a `field` filter). */
  old: unknown;
  new: unknown;
  /** Aborted when the operator shuts down or loses leadership. */
  signal: AbortSignal;
}

export type HandlerFn = (kwargs: HandlerKwargs) => Promise<unknown>;

/** The part of a handler's kwargs that comes from the object itself. */
export function bodyKwargs(body: KubeObject): Pick<HandlerKwargs, 'body' | 'spec' | 'status' | 'meta'> {
  return {
    body,
    spec: (body.spec ?? {}) as Record<string, unknown>,
    status: (body.status ?? {}) as Record<string, unknown>,
    meta: body.metadata,
  };
}

export interface HandlerPolicy {
  /** Unique among the resource's handlers; the key of its progress record. */
  id: string;
  /** Attempts before the failure becomes permanent. @default Infinity */
  retries?: number;
  /** Base delay in seconds for unknown errors; doubles each retry up to `backoffCap`. @default 5 */
  backoff?: number;
  /** Longest delay in seconds between retries of unknown errors. @default 300 */
  backoffCap?: number;
  /** Seconds since the first attempt after which the failure becomes permanent. @default none */
  timeout?: number;
  /**
   * Dotted field path (e.g. `spec.backend`): an update handler runs only when this field changed;
   * a create/resume handler only when the field is set.
   * @default the whole object
   */
  field?: string;
}

export interface ChangeHandler extends Readonly<
  Required<Pick<HandlerPolicy, 'id' | 'retries' | 'backoff' | 'backoffCap'>>
> {
  readonly kind: 'change';
  readonly reason: 'create' | 'update' | 'delete' | 'resume';
  readonly resource: Resource;
  readonly fn: HandlerFn;
  readonly timeout: number | undefined;
  readonly field: string | undefined;
}

export interface TimerPolicy {
  id: string;
  /** Seconds between runs, counted from the end of the previous run. */
  interval: number;
  /** Seconds before the first run after the object is first seen. @default interval */
  initialDelay?: number;
}

export interface TimerHandler {
  readonly kind: 'timer';
  readonly id: string;
  readonly resource: Resource;
  readonly interval: number;
  readonly initialDelay: number;
  readonly fn: HandlerFn;
}

export interface EventKwargs {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  body: KubeObject;
  logger: Logger;
  signal: AbortSignal;
}

export interface EventPolicy {
  id: string;
}

/** Raw watch events, for objects the operator watches but does not own the lifecycle of. */
export interface EventHandler {
  readonly kind: 'event';
  readonly id: string;
  readonly resource: Resource;
  readonly fn: (kwargs: EventKwargs) => Promise<unknown>;
}

export type AnyHandler = ChangeHandler | TimerHandler | EventHandler;
