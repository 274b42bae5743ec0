// `default-route` in a selection moves the pod's default route to that network: for each
// requested gateway, `ip route replace default via GW dev IFNAME` inside the pod. Pure: returns the
// argv lists; a gateway outside every subnet the network gave the interface is a request error
// (the kernel would refuse it with a less helpful message).
import { isIP } from 'node:net';
import { contains, parseCidr } from '../ipam/cidr.ts';
import type { CniResult } from '../cni/types.ts';
import { AttachmentRequestError } from './resolve.ts';

export interface DefaultRouteInput {
  /** e.g. "network 2 (app/net-b)" */
  where: string;
  ifname: string;
  gateways: string[];
  result: CniResult;
}

export function defaultRouteCommands(inputs: DefaultRouteInput[]): string[][] {
  const cmds: string[][] = [];
  const families = new Map<number, string>();
  for (const inp of inputs) {
    for (const gw of inp.gateways) {
      const fam = isIP(gw);
      const prior = families.get(fam);
      if (prior) {
        throw new AttachmentRequestError(
          `${inp.where}: default-route ${gw}: ${prior} already asks for the IPv${fam} default route; only one network can have it`,
        );
      }
      families.set(fam, inp.where);
      const subnets = (inp.result.ips ?? [])
        .map((ip) => ip.address)
        .filter((a) => isIP(a.split('/')[0]!) === fam);
      if (!subnets.some((cidr) => cidr.includes('/') && contains(parseCidr(cidr, true), gw))) {
        throw new AttachmentRequestError(
          `${inp.where}: default-route ${gw} is not inside the network's subnet on ${inp.ifname} ` +
            `(${subnets.join(', ') || 'no IPv' + fam + ' address'}); use that network's gateway`,
        );
      }
      cmds.push([
        'ip',
        ...(fam === 6 ? ['-6'] : []),
        'route',
        'replace',
        'default',
        'via',
        gw,
        'dev',
        inp.ifname,
      ]);
    }
  }
  return cmds;
}
