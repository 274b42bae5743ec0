// Kubernetes Events (core/v1) about the objects we handle, so `kubectl describe` shows why a
// handler failed or what it did. Posting an event is best effort: a failure is logged, never thrown.
import { randomBytes } from 'node:crypto';
import type { KubeClient } from '../kube/client.ts';
import type { KubeObject } from '../kube/object.ts';
import { Builtin } from '../kube/resource.ts';
import type { Logger } from '../log/logger.ts';

export interface EventOptions {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** Reporting component. @default trellis-operator */
  component?: string;
}

/** Namespace an event about this object lives in: its own, or `default` for cluster-scoped ones. */
export function eventNamespace(obj: KubeObject): string {
  return obj.metadata.namespace || 'default';
}

export async function postEvent(
  kube: KubeClient,
  obj: KubeObject,
  opts: EventOptions,
  logger?: Logger,
): Promise<void> {
  const now = new Date().toISOString();
  const component = opts.component ?? 'trellis-operator';
  const event: KubeObject = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      name: `${obj.metadata.name}.${randomBytes(8).toString('hex')}`,
      namespace: eventNamespace(obj),
    },
    involvedObject: {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
    },
    type: opts.type,
    reason: opts.reason,
    // The API server limits event messages to 1 KiB.
    message: opts.message.length > 1024 ? `${opts.message.slice(0, 1021)}...` : opts.message,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
    source: { component },
    reportingComponent: component,
    reportingInstance: process.env.HOSTNAME ?? component,
  };
  try {
    await kube.create(Builtin.Event, event);
  } catch (err: unknown) {
    logger?.warn({ err, reason: opts.reason, object: obj.metadata.name }, 'could not post event');
  }
}
