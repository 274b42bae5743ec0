// `trellis lab demo` on real nodes: a Deployment of probe pods spread over every node by a
// topology spread constraint, created through the API like any workload, waited for until every
// replica is Ready (kubelet's readiness probe reaches it from the node).
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../../src/kube/client.ts';
import type { KubeObject } from '../../src/kube/object.ts';
import { Builtin } from '../../src/kube/resource.ts';
import { Deployment, type PodObj } from '../cluster/status.ts';
import type { LabState } from '../state.ts';

export const DEMO_NAMESPACE = 'default';

export interface SpreadProbeDeployment {
  name: string;
  namespace: string;
  replicas: number;
  image: string;
  imagePullPolicy: 'IfNotPresent' | 'Never';
}

/**
 * A Deployment of probe pods (label app=NAME) spread evenly over the nodes. Each replica turns Ready
 * only when kubelet's readiness probe reaches it from its node, so Ready means node-to-pod works.
 */
export function spreadProbeDeployment(d: SpreadProbeDeployment): KubeObject {
  const labels = { app: d.name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: d.name, namespace: d.namespace, labels },
    spec: {
      replicas: d.replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 1,
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'DoNotSchedule',
              labelSelector: { matchLabels: labels },
            },
          ],
          containers: [
            {
              name: 'probe',
              image: d.image,
              imagePullPolicy: d.imagePullPolicy,
              args: ['--name', d.name],
              ports: [{ name: 'probe', containerPort: 8080 }],
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

export interface DemoPod {
  namespace: string;
  name: string;
  node: string;
  ip: string;
}

export async function realDemo(
  kube: KubeClient,
  state: LabState,
  perNode: number,
  image: string,
  timeoutMs = 120_000,
): Promise<DemoPod[]> {
  const want = perNode * state.nodes.length;
  await kube.apply(
    Deployment,
    spreadProbeDeployment({
      name: 'demo',
      namespace: DEMO_NAMESPACE,
      replicas: want,
      image,
      imagePullPolicy: 'IfNotPresent',
    }),
    { force: true },
  );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pods = (
      await kube.listAll<PodObj>(Builtin.Pod, DEMO_NAMESPACE, { labelSelector: 'app=demo' })
    ).items.filter(
      (p) =>
        !p.metadata.deletionTimestamp &&
        p.status?.podIP &&
        p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    if (pods.length >= want) {
      return pods
        .map((p) => ({
          namespace: DEMO_NAMESPACE,
          name: p.metadata.name,
          node: p.spec?.nodeName ?? '',
          ip: p.status?.podIP ?? '',
        }))
        .sort((a, b) => a.node.localeCompare(b.node) || a.name.localeCompare(b.name));
    }
    if (Date.now() > deadline)
      throw new Error(
        `${pods.length}/${want} demo pods Ready after ${timeoutMs} ms; see kubectl describe pods -l app=demo`,
      );
    await sleep(500);
  }
}
