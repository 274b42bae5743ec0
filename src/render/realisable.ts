// Judges what admission cannot: a ClusterNetwork that is valid on its own but cannot be realised
// on this cluster (no node for a pool, too few blocks, an MTU the underlay cannot carry) or whose
// attachment pools make no sense. The operator reports each finding as Degraded, naming the field.
// Pure: it reads the spec and the Node objects it is given and never talks to the API server.
// It re-checks the CEL rules' ground too, so an object stored before a rule existed is still judged.
import { backendMtu, poolBlockSize, type ClusterNetwork } from '../api/clusternetwork.ts';
import type { KubeObject } from '../kube/object.ts';
import { bitsOf, cidrContainsIp, cidrsOverlap, parseCidr, parseIp, type Cidr, type Ip } from './ip.ts';
import { SelectorError, compileSelector, type Selector } from '../selector/index.ts';

export interface Finding {
  /** JSON path of the field to fix, e.g. spec.pools[1].nodeSelector. */
  field: string;
  message: string;
}

export interface RealisableOptions {
  /**
   * MTU of the node underlay when no Node says otherwise. A Node can state its own with the
   * annotation network.trellis.dev/underlay-mtu; the smallest one counts.
   * @default 1500
   */
  underlayMtu?: number;
  /**
   * The agent's namespace: backend.bgp peer passwords are read from Secrets there only.
   * @default no check
   */
  agentNamespace?: string;
}

export const UNDERLAY_MTU_ANNOTATION = 'network.trellis.dev/underlay-mtu';
/** VXLAN encapsulation over an IPv4 underlay: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;

export function findUnrealisable(
  cn: ClusterNetwork,
  nodes: KubeObject[],
  opts: RealisableOptions = {},
): Finding[] {
  const findings: Finding[] = [];
  const spec = cn.spec;
  if (!spec) return [{ field: 'spec', message: 'spec is missing' }];
  const pools = spec.pools ?? [];
  // A selector the API server let through but that cannot be used (stored before the schema said
  // so, or an empty In list) is a finding on its field, and that pool selects no node.
  const compile = (sel: Parameters<typeof compileSelector>[0], field: string): Selector => {
    try {
      return compileSelector(sel, { absent: 'everything', field });
    } catch (err: unknown) {
      if (!(err instanceof SelectorError)) throw err;
      findings.push({ field: err.field, message: err.message.slice(err.field.length + 2) });
      return compileSelector(null, { absent: 'nothing' });
    }
  };
  const agentSelector = compile({ matchLabels: spec.agent?.nodeSelector }, 'spec.agent.nodeSelector');
  const poolSelectors = pools.map((p, i) => compile(p.nodeSelector, `spec.pools[${i}].nodeSelector`));
  const agentNodes = nodes.filter((n) => agentSelector.matches(n.metadata.labels));
  if (pools.length === 0)
    findings.push({ field: 'spec.pools', message: 'at least one pod pool is required' });

  const parsedPools: (Cidr | undefined)[] = pools.map((p) => parseCidr(p.cidr));
  const nodesServed = new Set<string>();
  pools.forEach((pool, i) => {
    const field = `spec.pools[${i}]`;
    const c = parsedPools[i];
    if (!c) {
      findings.push({
        field: `${field}.cidr`,
        message: `pool ${pool.name}: ${pool.cidr} is not a valid CIDR`,
      });
      return;
    }
    const blockSize = poolBlockSize(pool);
    if (blockSize < c.prefix || blockSize > bitsOf(c.family)) {
      findings.push({
        field: `${field}.blockSize`,
        message: `pool ${pool.name}: block size /${blockSize} does not fit in ${pool.cidr}`,
      });
      return;
    }
    const matching = agentNodes.filter((n) => poolSelectors[i]!.matches(n.metadata.labels));
    for (const n of matching) nodesServed.add(n.metadata.name);
    if (pool.nodeSelector && agentNodes.length > 0 && matching.length === 0) {
      findings.push({
        field: `${field}.nodeSelector`,
        message: `pool ${pool.name}: nodeSelector matches none of the ${agentNodes.length} node(s) running the agent`,
      });
    }
    const blocks = 2n ** BigInt(blockSize - c.prefix);
    if (blocks < BigInt(matching.length)) {
      findings.push({
        field: `${field}.blockSize`,
        message:
          `pool ${pool.name}: ${pool.cidr} holds only ${blocks} block(s) of /${blockSize} but ${matching.length} nodes ` +
          'use it; every node needs a block: use a larger block count (longer blockSize) or a larger CIDR',
      });
    }
  });
  pools.forEach((a, i) => {
    for (let j = i + 1; j < pools.length; j++) {
      const ca = parsedPools[i];
      const cb = parsedPools[j];
      if (ca && cb && cidrsOverlap(ca, cb)) {
        findings.push({
          field: `spec.pools[${j}].cidr`,
          message: `pool ${pools[j]!.name} (${pools[j]!.cidr}) overlaps pool ${a.name} (${a.cidr})`,
        });
      }
    }
  });
  if (pools.length > 0) {
    const families = new Set(parsedPools.filter((c): c is Cidr => c !== undefined).map((c) => c.family));
    for (const n of agentNodes) {
      const covered = [...families].every((fam) =>
        pools.some((_p, i) => parsedPools[i]?.family === fam && poolSelectors[i]!.matches(n.metadata.labels)),
      );
      if (!covered && families.size > 0) {
        findings.push({
          field: 'spec.pools',
          message: `node ${n.metadata.name} runs the agent but no pool${families.size > 1 ? ' of every address family' : ''} selects it, so its pods would get no address`,
        });
      }
    }
  }

  findings.push(...checkMtu(cn, nodes, opts));
  findings.push(...checkAttachments(cn, parsedPools));
  if (opts.agentNamespace) findings.push(...checkPeerSecrets(cn, opts.agentNamespace));
  return findings;
}

/** The agent may read Secrets in its own namespace only (a Role by name), so a password elsewhere is unusable. */
function checkPeerSecrets(cn: ClusterNetwork, namespace: string): Finding[] {
  return (cn.spec?.backend?.bgp?.peers ?? []).flatMap((p, i) => {
    const ref = p.password?.secretKeyRef;
    if (!ref?.namespace || ref.namespace === namespace) return [];
    return [
      {
        field: `spec.backend.bgp.peers[${i}].password.secretKeyRef.namespace`,
        message: `the agent reads peer passwords only from Secrets in its own namespace ${namespace}: create Secret ${ref.name} there and set namespace to ${namespace} or leave it unset (not ${ref.namespace})`,
      },
    ];
  });
}

function checkMtu(cn: ClusterNetwork, nodes: KubeObject[], opts: RealisableOptions): Finding[] {
  const backend = cn.spec?.backend;
  const mode = backend?.mode ?? 'vxlan';
  const mtu = backendMtu(backend);
  const fromNodes = nodes
    .map((n) => Number(n.metadata.annotations?.[UNDERLAY_MTU_ANNOTATION]))
    .filter((v) => Number.isInteger(v) && v > 0);
  const underlay = fromNodes.length > 0 ? Math.min(...fromNodes) : (opts.underlayMtu ?? 1500);
  const overhead = mode === 'vxlan' ? VXLAN_OVERHEAD : 0;
  if (mtu + overhead <= underlay) return [];
  return [
    {
      field: 'spec.backend.mtu',
      message:
        mode === 'vxlan'
          ? `pod MTU ${mtu} plus ${overhead} bytes of VXLAN overhead exceeds the underlay MTU ${underlay}: set spec.backend.mtu to at most ${underlay - overhead}`
          : `pod MTU ${mtu} exceeds the underlay MTU ${underlay}: set spec.backend.mtu to at most ${underlay}`,
    },
  ];
}

function checkAttachments(cn: ClusterNetwork, podPools: (Cidr | undefined)[]): Finding[] {
  const findings: Finding[] = [];
  (cn.spec?.attachments ?? []).forEach((a, i) => {
    const base = `spec.attachments[${i}]`;
    if (
      (a.type === 'macvlan' || a.type === 'ipvlan' || a.type === 'vlan' || a.type === 'host-device') &&
      !a.master
    ) {
      findings.push({
        field: `${base}.master`,
        message: `attachment ${a.name}: type ${a.type} needs master (a host interface)`,
      });
    }
    if (a.type === 'vlan' && !(Number.isInteger(a.vlanId) && a.vlanId! >= 1 && a.vlanId! <= 4094)) {
      findings.push({
        field: `${base}.vlanId`,
        message: `attachment ${a.name}: type vlan needs vlanId 1..4094`,
      });
    }
    const pool = a.pool;
    if (!pool) return;
    const field = `${base}.pool`;
    const c = parseCidr(pool.cidr);
    if (!c) {
      findings.push({
        field: `${field}.cidr`,
        message: `attachment ${a.name}: ${pool.cidr} is not a valid CIDR`,
      });
      return;
    }
    podPools.forEach((p, j) => {
      if (p && cidrsOverlap(p, c)) {
        findings.push({
          field: `${field}.cidr`,
          message: `attachment ${a.name}: ${pool.cidr} overlaps pod pool ${cn.spec?.pools[j]?.name} (${cn.spec?.pools[j]?.cidr})`,
        });
      }
    });
    const addr = (name: 'rangeStart' | 'rangeEnd' | 'gateway'): Ip | undefined => {
      const text = pool[name];
      if (text === undefined) return undefined;
      const ip = parseIp(text);
      if (!ip)
        findings.push({
          field: `${field}.${name}`,
          message: `attachment ${a.name}: ${name} ${text} is not an IP address`,
        });
      else if (!cidrContainsIp(c, ip)) {
        findings.push({
          field: `${field}.${name}`,
          message: `attachment ${a.name}: ${name} ${text} is outside ${pool.cidr}`,
        });
      } else return ip;
      return undefined;
    };
    const start = addr('rangeStart');
    const end = addr('rangeEnd');
    addr('gateway');
    if (start && end && start.value > end.value) {
      findings.push({
        field: `${field}.rangeStart`,
        message: `attachment ${a.name}: rangeStart ${pool.rangeStart} is after rangeEnd ${pool.rangeEnd}`,
      });
    }
    (pool.exclude ?? []).forEach((x, k) => {
      const xc = parseCidr(x.includes('/') ? x : `${x}/${x.includes(':') ? 128 : 32}`);
      if (!xc)
        findings.push({
          field: `${field}.exclude[${k}]`,
          message: `attachment ${a.name}: exclude ${x} is not an IP or CIDR`,
        });
      else if (!cidrsOverlap(c, xc)) {
        findings.push({
          field: `${field}.exclude[${k}]`,
          message: `attachment ${a.name}: exclude ${x} is outside ${pool.cidr}`,
        });
      }
    });
  });
  return findings;
}
