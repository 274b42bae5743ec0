// BIRD 2 configuration of a top-of-rack router: the fabric side of backend.mode bgp, used by the
// lab's racks (and the BGP benchmark). It accepts and re-announces everything it hears (a router,
// not a node: the nodes' export filters decide what enters the fabric) and installs it in its kernel.
import { canonicalIP } from '../ipam/cidr.ts';
import { renderText } from '../render/templates.ts';
import { BirdConfigError, passwordProblem, sessionName } from './config.ts';

export interface TorNeighbor {
  address: string;
  asNumber: number;
  description: string;
  /** TCP MD5 password the router requires of this neighbor. */
  password?: string;
}

export function renderTorConfig(tor: {
  name: string;
  routerId: string;
  asNumber: number;
  neighbors: TorNeighbor[];
}): string {
  const asOk = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 4294967295;
  if (!asOk(tor.asNumber)) throw new BirdConfigError(`router ${tor.name}: bad AS ${tor.asNumber}`);
  return renderText('bird-tor.conf', {
    name: tor.name.replace(/[^a-z0-9-]/g, '?'),
    routerId: canonicalIP(tor.routerId),
    asNumber: tor.asNumber,
    neighbors: tor.neighbors
      .map((n) => {
        if (!asOk(n.asNumber)) throw new BirdConfigError(`neighbor ${n.address}: bad AS ${n.asNumber}`);
        const problem = n.password === undefined ? undefined : passwordProblem(n.password);
        if (problem) throw new BirdConfigError(`neighbor ${n.address}: password ${problem}`);
        return {
          name: sessionName('peer', n.address),
          address: canonicalIP(n.address),
          asNumber: n.asNumber,
          description: n.description.replace(/[^A-Za-z0-9. -]/g, '?'),
          password: n.password ?? '',
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name)),
  });
}
