// GIVEN a ClusterNetwork's backend.bgp and a node WHEN the BIRD config is planned and rendered THEN
// only the node's blocks are exported, sessions follow mesh and selectors, bad values are refused
// naming the field, the text is deterministic and BIRD itself accepts it (`bird -p`).
// The status parser is checked on output captured from BIRD 2.0.12.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BgpSpec } from '../api/clusternetwork.ts';
import {
  BirdConfigError,
  establishedCount,
  parseBirdProtocols,
  planSessions,
  renderBirdConfig,
  renderTorConfig,
  type BirdInput,
} from './index.ts';

const bgp: BgpSpec = {
  asNumber: 64512,
  nodeToNodeMesh: false,
  peers: [
    { address: '198.18.1.1', asNumber: 65101, nodeSelector: { matchLabels: { rack: 'r1' } } },
    { address: '198.18.2.1', asNumber: 65102, nodeSelector: { matchLabels: { rack: 'r2' } } },
  ],
};
const nodes = [
  { name: 'n1', address: '198.18.1.11' },
  { name: 'n2', address: '198.18.1.12' },
  { name: 'n3', address: '198.18.2.11' },
];
const self = { name: 'n1', labels: { rack: 'r1' }, address: '198.18.1.11' };

function input(over: Partial<BirdInput> = {}): BirdInput {
  return {
    node: 'n1',
    clusterNetwork: 'default',
    routerId: '198.18.1.11',
    asNumber: 64512,
    gracefulRestartSeconds: 120,
    ownBlocks: ['10.244.0.64/26', '10.244.0.0/26'],
    pools: ['10.244.0.0/16'],
    sessions: planSessions(bgp, self, nodes),
    ...over,
  };
}

function birdAccepts(text: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bird-'));
  writeFileSync(join(dir, 'bird.conf'), text);
  execFileSync('bird', ['-p', '-c', join(dir, 'bird.conf')], { stdio: 'pipe' });
}

describe('planSessions', () => {
  it('opens a session only to the peers whose nodeSelector matches the node', () => {
    expect(planSessions(bgp, self, nodes)).toEqual([
      {
        name: 'peer_198_18_1_1',
        kind: 'peer',
        address: '198.18.1.1',
        asNumber: 65101,
        description: 'backend.bgp.peers[0]',
      },
    ]);
    const r2 = planSessions(bgp, { name: 'n3', labels: { rack: 'r2' }, address: '198.18.2.11' }, nodes);
    expect(r2.map((s) => s.address)).toEqual(['198.18.2.1']);
  });

  it('with the mesh on, peers with every other node in the cluster AS, never itself', () => {
    const mesh = planSessions({ asNumber: 64512 }, self, nodes);
    expect(mesh.map((s) => [s.name, s.asNumber])).toEqual([
      ['mesh_198_18_1_12', 64512],
      ['mesh_198_18_2_11', 64512],
    ]);
  });

  it('refuses a peer whose password Secret could not be read, naming the field and Secret', () => {
    const withPw: BgpSpec = {
      asNumber: 64512,
      peers: [
        { address: '198.18.1.1', asNumber: 65101, password: { secretKeyRef: { name: 'bgp', key: 'tor' } } },
      ],
    };
    expect(() => planSessions(withPw, self, [])).toThrow(
      /backend\.bgp\.peers\[0\]\.password: Secret .*bgp key tor/,
    );
    expect(() => planSessions(withPw, self, [], new Map([['198.18.1.1', 'a"b']]))).toThrow(/double quotes/);
    expect(planSessions(withPw, self, [], new Map([['198.18.1.1', 's3cret']]))[0]?.password).toBe('s3cret');
  });
});

describe('renderBirdConfig', () => {
  it('exports only the own blocks through an explicit filter and sends only BGP-learned routes to the kernel', () => {
    const text = renderBirdConfig(input());
    expect(text).toContain('if source = RTS_STATIC && proto ~ "own*" then accept;');
    expect(text).toMatch(
      /protocol static own4 \{\n {2}ipv4;\n {2}route 10\.244\.0\.0\/26 blackhole;\n {2}route 10\.244\.0\.64\/26 blackhole;\n\}/,
    );
    expect(text).toMatch(/filter trellis_kernel \{\n  if source = RTS_BGP then accept;\n  reject;\n\}/);
    expect(text).toMatch(
      /protocol bgp peer_198_18_1_1 from trellis_session \{\n {2}neighbor 198\.18\.1\.1 as 65101;/,
    );
    expect(text).not.toContain('198.18.2.1');
    expect(text).toContain('graceful restart time 120;');
    expect(text).toMatchSnapshot();
    birdAccepts(text);
  });

  it('is deterministic: the same input in another order renders the same text', () => {
    const a = renderBirdConfig(input());
    const b = renderBirdConfig(input({ ownBlocks: ['10.244.0.0/26', '10.244.0.64/26'] }));
    expect(a).toBe(b);
  });

  it('renders a node with no block yet (exports nothing) and a dual-stack mesh with a password, both accepted by BIRD', () => {
    const empty = renderBirdConfig(input({ ownBlocks: [] }));
    expect(empty).toMatch(/protocol static own4 \{\n {2}ipv4;\n\}/);
    birdAccepts(empty);
    const dual = renderBirdConfig(
      input({
        pools: ['10.244.0.0/16', 'fd00:10:244::/56'],
        ownBlocks: ['10.244.0.0/26', 'fd00:10:244::/122'],
        sessions: [
          {
            name: 'mesh_198_18_1_12',
            kind: 'mesh',
            address: '198.18.1.12',
            asNumber: 64512,
            description: 'node n2',
          },
          {
            name: 'peer_198_18_1_1',
            kind: 'peer',
            address: '198.18.1.1',
            asNumber: 65101,
            description: 'x',
            password: 'pw 1',
          },
        ],
      }),
    );
    expect(dual).toContain('route fd00:10:244::/122 blackhole;');
    expect(dual).toContain('password "pw 1";');
    birdAccepts(dual);
  });

  it('refuses what would break the file, naming the problem', () => {
    expect(() => renderBirdConfig(input({ routerId: 'fd00::1' }))).toThrow(BirdConfigError);
    expect(() => renderBirdConfig(input({ routerId: 'fd00::1' }))).toThrow(/needs an IPv4 InternalIP/);
    expect(() => renderBirdConfig(input({ ownBlocks: ['10.244.0.1/26'] }))).toThrow(/host bits set/);
    expect(() => renderBirdConfig(input({ asNumber: 0 }))).toThrow(/AS number 1\.\.4294967295/);
    expect(() =>
      renderBirdConfig(
        input({
          sessions: [
            {
              name: 'peer_1_2_3_4',
              kind: 'peer',
              address: '1.2.3.4',
              asNumber: 1,
              description: '',
              password: 'a";}',
            },
          ],
        }),
      ),
    ).toThrow(/double quotes/);
  });
});

describe('renderTorConfig (the lab routers)', () => {
  const tor = (password?: string) =>
    renderTorConfig({
      name: 'rack1',
      routerId: '198.19.1.1',
      asNumber: 65001,
      neighbors: [
        {
          address: '198.19.1.11',
          asNumber: 64512,
          description: 'node n1',
          ...(password ? { password } : {}),
        },
        { address: '198.19.0.2', asNumber: 65002, description: 'router of rack2' },
      ],
    });

  it('requires a password only of the neighbors given one, in a config BIRD accepts', () => {
    const text = tor('rack1-pw');
    expect(text.match(/password "rack1-pw";/g)).toHaveLength(1);
    expect(text).toMatch(/neighbor 198\.19\.1\.11 as 64512;\n\s+password "rack1-pw";/);
    expect(tor()).not.toContain('password');
    birdAccepts(text);
  });

  it('refuses a password that would break the file', () => {
    expect(() => tor('a"b')).toThrow(/neighbor 198.19.1.11: password must be printable ASCII/);
  });
});

describe('parseBirdProtocols (captured BIRD 2.0.12 output)', () => {
  const fixture = (f: string): string => readFileSync(new URL(`./testdata/${f}`, import.meta.url), 'utf8');

  it('reads state, routes received/announced and the reason a session is down', () => {
    const s = parseBirdProtocols(fixture('protocols-established-refused.txt'));
    expect(s.map((x) => [x.name, x.state, x.established])).toEqual([
      ['peer_127_0_0_2', 'Established', true],
      ['peer_127_0_0_3', 'Active', false],
      ['peer_127_0_0_4', 'Idle', false],
    ]);
    expect(s[0]).toMatchObject({
      kind: 'peer',
      peerAddress: '127.0.0.2',
      peerAS: 64513,
      since: '04:44:21.021',
      routesReceived: 2,
      routesAnnounced: 1,
    });
    expect(s[0]?.reason).toBeUndefined();
    expect(s[1]?.reason).toBe('Socket: Connection refused');
    expect(s[2]?.reason).toMatch(/no session yet \(Idle\): check that the peer is reachable/);
    expect(establishedCount(s)).toBe('1/3');
  });

  it('names a wrong AS as the reason', () => {
    const s = parseBirdProtocols(fixture('protocols-bad-peer-as.txt'));
    expect(s[0]).toMatchObject({
      name: 'peer_127_0_0_2',
      state: 'Idle',
      established: false,
      reason: 'Received: Bad peer AS',
    });
  });

  it('returns nothing for a speaker with no BGP protocol', () => {
    expect(
      parseBirdProtocols(
        'BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\ndevice1    Device     ---        up     04:44:08.915  \n',
      ),
    ).toEqual([]);
  });
});
