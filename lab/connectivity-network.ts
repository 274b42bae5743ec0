// `trellis connectivity-test --network NAME`: every lab pod attached to the extra network NAME
// (a NAD, `namespace/name` or a name in the pod's namespace) to every other one, over that
// network's addresses as network-status reports them; the receiver must see the sender's own
// address on that network. Nodes and the outside host are not on attachment networks.
import type { KubeClient } from '../src/kube/client.ts';
import { Builtin } from '../src/kube/resource.ts';
import { NETWORK_STATUS_ANNOTATION, parseNetworkStatus } from '../src/multinet/index.ts';
import type { Endpoint } from './connectivity.ts';
import { LAB_POD_LABEL, podNetnsName, type Pod } from './pods.ts';
import { UserError, type LabState } from './state.ts';

export async function planNetwork(
  kube: KubeClient,
  state: LabState,
  network: string,
): Promise<{ endpoints: Endpoint[]; senders: [Endpoint, { target: Endpoint; expectedSource: string }[]][] }> {
  const pods = await kube.listAll<Pod>(Builtin.Pod, undefined, { labelSelector: LAB_POD_LABEL });
  const endpoints: Endpoint[] = [];
  for (const p of pods.items) {
    if (p.status?.phase !== 'Running' || p.metadata.deletionTimestamp) continue;
    const ns = p.metadata.namespace ?? 'default';
    const want = network.includes('/') ? network : `${ns}/${network}`;
    const entry = parseNetworkStatus(p.metadata.annotations?.[NETWORK_STATUS_ANNOTATION]).find(
      (e) => e.name === want,
    );
    const ip = entry?.ips?.[0];
    if (!ip) continue;
    endpoints.push({
      id: `${ns}/${p.metadata.name}`,
      kind: 'pod',
      netns: podNetnsName(state.prefix, p.metadata.uid ?? ''),
      ip,
      node: p.spec?.nodeName ?? '',
    });
  }
  if (endpoints.length < 2) {
    throw new UserError(
      `fewer than two running lab pods are attached to network ${network}; create some with ` +
        `\`trellis lab pod create NAME --node NODE --networks ${network}\``,
    );
  }
  endpoints.sort((a, b) => a.id.localeCompare(b.id));
  const senders = endpoints.map(
    (e) =>
      [e, endpoints.filter((t) => t !== e).map((t) => ({ target: t, expectedSource: e.ip }))] as [
        Endpoint,
        { target: Endpoint; expectedSource: string }[],
      ],
  );
  return { endpoints, senders };
}
