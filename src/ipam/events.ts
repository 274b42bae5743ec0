// Posts a Kubernetes Event on the Pod when IPAM cannot give it an address, so `kubectl describe
// pod` says why the sandbox failed. Best effort: a failure to post is logged, never thrown.
import type { KubeClient } from '../kube/client.ts';
import type { KubeObject } from '../kube/object.ts';
import { Builtin } from '../kube/resource.ts';
import type { Logger } from '../log/logger.ts';

export const ALLOCATION_FAILED_REASON = 'IPAllocationFailed';

export async function postAllocationFailedEvent(
  kube: KubeClient,
  pod: { namespace: string; name: string },
  node: string,
  message: string,
  logger?: Logger,
): Promise<void> {
  try {
    const live = await kube.getOrUndefined(Builtin.Pod, pod.name, pod.namespace);
    const now = new Date().toISOString();
    const event: KubeObject = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${pod.name}.${Date.now().toString(16)}${Math.random().toString(16).slice(2, 8)}`,
        namespace: pod.namespace,
      },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Pod',
        namespace: pod.namespace,
        name: pod.name,
        ...(live?.metadata.uid ? { uid: live.metadata.uid } : {}),
      },
      reason: ALLOCATION_FAILED_REASON,
      message,
      type: 'Warning',
      source: { component: 'trellis-ipam', host: node },
      reportingComponent: 'trellis-ipam',
      reportingInstance: node,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    await kube.create(Builtin.Event, event);
  } catch (err: unknown) {
    logger?.warn({ err, pod: `${pod.namespace}/${pod.name}` }, 'could not post the IPAllocationFailed event');
  }
}
