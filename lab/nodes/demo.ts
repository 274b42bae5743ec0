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

export function demoDeployment(replicas: number, image: string): KubeObject {
  const labels = { app: 'demo' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'demo', namespace: DEMO_NAMESPACE, labels },
    spec: {
      replicas,
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
              image,
              imagePullPolicy: 'IfNotPresent',
              args: ['--name', 'demo'],
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
  await kube.apply(Deployment, demoDeployment(want, image), { force: true });
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
