// A stand-in data plane for developing the lab while our operator and agent are not there yet:
// Debian's reference bridge + host-local + portmap chain per node with a /24 per node and plain
// routes between nodes. Only used with `lab up --stand-in`; the real lab runs our operator and agent.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNetns, run } from './sh.ts';
import type { LabState } from './state.ts';

export function installStandIn(state: LabState): void {
  state.nodes.forEach((node, i) => {
    const subnet = `10.244.${i + 1}.0/24`;
    const conf = {
      cniVersion: '1.0.0',
      name: 'lab-standin',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          isDefaultGateway: true,
          ipMasq: false,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet }]],
            dataDir: join(node.root, 'var/lib/cni/networks'),
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    };
    const dir = join(node.root, 'etc', 'cni', 'net.d');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '10-standin.conflist'), JSON.stringify(conf, null, 2));
    state.nodes.forEach((peer, j) => {
      if (j !== i) run(inNetns(node.netns, ['ip', 'route', 'add', `10.244.${j + 1}.0/24`, 'via', peer.ip]));
    });
  });
}
