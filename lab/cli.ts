// The `trellis` CLI: drives the one-machine lab (up/down/status, pods, exec, demo), the
// connectivity test and the IPAM view. Every command takes --json for scripts; human output goes to
// stdout, progress to stderr. Errors the user can fix print one line naming what to do.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { kubectlPath } from '../src/controlplane/binaries.ts';
import { KubeClient } from '../src/kube/client.ts';
import { startAgent, killAgent } from './agents.ts';
import { intFlag, keyValues, parseArgv, withNetworks, type FlagKind, type Parsed } from './args.ts';
import { connectivityTest, renderMatrix } from './connectivity.ts';
import { down } from './down.ts';
import { checkPod, createPod, deletePod, demo, execInPod, labPods } from './podcmd.ts';
import { labExplain, labProbe, parsePortProto, parseProtocol } from './policy.ts';
import { renderExplanation } from '../src/policy/explain.ts';
import { labStatus, renderStatus } from './status.ts';
import {
  REPO,
  UserError,
  killRecordedProcess,
  defaultStateDir,
  findNode,
  parseSubnet,
  requireState,
  validatePrefix,
  type BackendMode,
} from './state.ts';
import { chartAppVersion } from '../images/build.ts';
import { clusterConnectivityTest } from './cluster/connectivity.ts';
import { gatherStatus, renderClusterStatus, summarizeStatus } from './cluster/status.ts';
import { resolveTarget, withCluster, type ClusterTarget } from './cluster/target.ts';
import { realDemo } from './nodes/demo.ts';
import { upRealNodes } from './nodes/up.ts';
import { requireRoot, startKubelet, up } from './up.ts';

const USAGE = `trellis: the Trellis lab and tools

  trellis lab up --nodes N --backend vxlan|host-gw|bgp [--racks R] [--force] [--prefix trl] [--subnet 198.18.0.0/24] [--stand-in | --real-nodes [--containerd 1|2]]
  trellis lab down
  trellis lab status
  trellis lab pod create NAME --node NODE [--namespace NS] [--label k=v]... [--annotation k=v]... [--host-port P] [--networks SPEC]
  trellis lab pod delete NAME [--namespace NS]
  trellis lab pod check NAME [--namespace NS]      (CNI CHECK through the pod's chain)
  trellis lab pod list
  trellis lab exec NAME [--namespace NS] -- CMD...
  trellis lab agent restart|kill NODE
  trellis lab kubelet restart NODE
  trellis lab demo [--per-node 2]
  trellis lab probe FROM TO --port N [--protocol TCP|UDP] [--timeout-ms 1000]   (FROM, TO: NS/POD or POD)
  trellis policy explain --from NS/POD|IP --to NS/POD|IP --port 80/TCP [--kubeconfig F] [--context C]
  trellis connectivity-test [--kubeconfig F] [--context C] [--namespace NS] [--image IMG] [--outside IP] [--keep] [--network NAD]
  trellis status [--kubeconfig F] [--context C]
  trellis ipam show [--kubeconfig F] [--context C]

Every command takes --json. The lab's state lives in $TRELLIS_LAB_DIR (default <repo>/.lab).
status, ipam show, policy explain and connectivity-test talk to any cluster as kubectl does (--kubeconfig, else
$KUBECONFIG, else the lab when one is up, else ~/.kube/config; --context picks a context). On a
real cluster (or a --real-nodes lab) connectivity-test deploys probe pods into its own namespace
and removes them afterwards.`;

function out(p: Parsed, json: unknown, human: string): void {
  process.stdout.write(p.booleans.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`);
}

function parse(argv: string[], flags: Record<string, FlagKind>): Parsed {
  return parseArgv(argv, { json: 'boolean', ...flags });
}

async function withKube<T>(fn: (kube: KubeClient) => Promise<T>): Promise<T> {
  const state = requireState();
  const kube = await KubeClient.fromKubeconfig(state.kubeconfig);
  try {
    return await fn(kube);
  } finally {
    await kube.close();
  }
}

const CLUSTER_FLAGS: Record<string, FlagKind> = { kubeconfig: 'string', context: 'string' };

function clusterTarget(p: Parsed): ClusterTarget {
  return resolveTarget({ kubeconfig: p.strings.kubeconfig, context: p.strings.context });
}

function one(p: Parsed, what: string): string {
  if (p.positionals.length !== 1) throw new UserError(`give exactly one ${what}`);
  return p.positionals[0];
}

async function lab(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case 'up': {
      const p = parse(rest, {
        nodes: 'string',
        backend: 'string',
        force: 'boolean',
        prefix: 'string',
        subnet: 'string',
        'stand-in': 'boolean',
        racks: 'string',
        'real-nodes': 'boolean',
        containerd: 'string',
      });
      const backend = p.strings.backend ?? 'vxlan';
      if (backend !== 'vxlan' && backend !== 'host-gw' && backend !== 'bgp')
        throw new UserError(`--backend must be vxlan, host-gw or bgp, got "${backend}"`);
      const containerd = p.strings.containerd ?? '1';
      if (containerd !== '1' && containerd !== '2')
        throw new UserError(
          `--containerd must be 1 (Debian's 1.6) or 2 (built from its Go module), got "${containerd}"`,
        );
      if (containerd === '2' && !p.booleans['real-nodes'])
        throw new UserError('--containerd 2 needs --real-nodes (simulated nodes run no container runtime)');
      const state = await (p.booleans['real-nodes'] ? upRealNodes : up)({
        containerd: containerd === '2' ? 2 : 1,
        nodes: intFlag(p, 'nodes', 3) ?? 3,
        backend: backend as BackendMode,
        stateDir: defaultStateDir(),
        prefix: validatePrefix(p.strings.prefix ?? process.env.TRELLIS_LAB_PREFIX ?? 'trl'),
        subnet: parseSubnet(p.strings.subnet ?? process.env.TRELLIS_LAB_SUBNET ?? '198.18.0.0/24'),
        force: p.booleans.force,
        standIn: p.booleans['stand-in'],
        racks: intFlag(p, 'racks', 0),
        say: (l) => process.stderr.write(`• ${l}\n`),
      });
      out(
        p,
        state,
        `kubeconfig: ${state.kubeconfig}\n  ${kubectlPath()} --kubeconfig ${state.kubeconfig} get clusternetwork\n  trellis lab demo && trellis connectivity-test`,
      );
      return 0;
    }
    case 'down': {
      const p = parse(rest, { prefix: 'string' });
      requireRoot();
      const report = await down({
        stateDir: defaultStateDir(),
        prefix: p.strings.prefix ?? process.env.TRELLIS_LAB_PREFIX,
      });
      out(
        p,
        report,
        `lab down: stopped ${report.stopped.length} processes, removed ${report.removed.length} namespaces/links (logs kept in ${report.stateDir})`,
      );
      return 0;
    }
    case 'status': {
      const p = parse(rest, {});
      const state = requireState();
      if (state.realNodes) return main(['status', ...rest]); // agents are pods: the cluster's view
      const st = await withKube((kube) => labStatus(kube, state));
      out(p, st, renderStatus(st));
      return st.apiServer.reachable &&
        st.nodes.every((n) => n.netns && n.kubeletPid && (st.standIn || n.agentPid))
        ? 0
        : 1;
    }
    case 'pod': {
      const [sub, ...r] = rest;
      const state = requireState();
      if (sub === 'create') {
        const p = parse(r, {
          node: 'string',
          namespace: 'string',
          label: 'multi',
          annotation: 'multi',
          'host-port': 'string',
          networks: 'string',
          'no-wait': 'boolean',
        });
        const name = one(p, 'pod name');
        if (!p.strings.node)
          throw new UserError(`--node is required; the lab has ${state.nodes.map((n) => n.name).join(', ')}`);
        const view = await withKube((kube) =>
          createPod(
            kube,
            state,
            {
              name,
              namespace: p.strings.namespace ?? 'default',
              node: p.strings.node,
              labels: keyValues(p.multi.label, 'label'),
              annotations: withNetworks(keyValues(p.multi.annotation, 'annotation'), p.strings.networks),
              hostPort: intFlag(p, 'host-port'),
            },
            { wait: !p.booleans['no-wait'] },
          ),
        );
        out(p, view, `pod ${view.namespace}/${view.name} on ${view.node}: ${view.ip || '(no IP yet)'}`);
        return 0;
      }
      if (sub === 'delete') {
        const p = parse(r, { namespace: 'string' });
        const name = one(p, 'pod name');
        const view = await withKube((kube) => deletePod(kube, state, name, p.strings.namespace ?? 'default'));
        out(
          p,
          { deleted: view },
          `pod ${view.namespace}/${view.name} deleted (its IP ${view.ip || '-'} released)`,
        );
        return 0;
      }
      if (sub === 'check') {
        const p = parse(r, { namespace: 'string' });
        const name = one(p, 'pod name');
        const res = await withKube((kube) => checkPod(kube, state, name, p.strings.namespace ?? 'default'));
        out(
          p,
          { ok: true, ...res },
          `CNI CHECK passed for ${res.pod.namespace}/${res.pod.name} through ${res.plugins.join(' -> ')}`,
        );
        return 0;
      }
      if (sub === 'list') {
        const p = parse(r, {});
        const pods = await withKube((kube) => labPods(kube, state));
        out(
          p,
          pods,
          pods.map((x) => `${x.namespace}/${x.name}\t${x.node}\t${x.ip || '-'}\t${x.phase}`).join('\n'),
        );
        return 0;
      }
      throw new UserError('usage: trellis lab pod create|delete|check|list ...');
    }
    case 'exec': {
      const p = parse(rest, { namespace: 'string' });
      const name = one(p, 'pod name');
      const state = requireState();
      return withKube((kube) => execInPod(kube, state, name, p.strings.namespace ?? 'default', p.rest));
    }
    case 'agent': {
      const [sub, ...r] = rest;
      const p = parse(r, {});
      const state = requireState();
      const node = findNode(state, one(p, 'node name'));
      if (sub === 'kill') {
        const killed = killAgent(state, node);
        out(
          p,
          { node: node.name, killed },
          killed ? `agent on ${node.name} killed (SIGKILL)` : `no agent was running on ${node.name}`,
        );
        return 0;
      }
      if (sub === 'restart') {
        killAgent(state, node);
        const pid = await withKube((kube) => startAgent(kube, state, node));
        out(p, { node: node.name, pid }, `agent on ${node.name} started (pid ${pid})`);
        return 0;
      }
      throw new UserError('usage: trellis lab agent restart|kill NODE');
    }
    case 'kubelet': {
      const [sub, ...r] = rest;
      const p = parse(r, {});
      const state = requireState();
      const node = findNode(state, one(p, 'node name'));
      if (sub !== 'restart') throw new UserError('usage: trellis lab kubelet restart NODE');
      killRecordedProcess(state.stateDir, `kubelet-${node.name}`);
      const pid = startKubelet(state, node);
      out(p, { node: node.name, pid }, `kubelet on ${node.name} started (pid ${pid})`);
      return 0;
    }
    case 'demo': {
      const p = parse(rest, { 'per-node': 'string' });
      const state = requireState();
      const perNode = intFlag(p, 'per-node', 2) ?? 2;
      if (perNode < 1 || perNode > 26) throw new UserError('--per-node must be from 1 to 26');
      if (state.realNodes) {
        const image = `trellis/probe:${chartAppVersion()}`;
        const real = await withKube((kube) => realDemo(kube, state, perNode, image));
        out(p, real, real.map((x) => `${x.namespace}/${x.name}\t${x.node}\t${x.ip}`).join('\n'));
        return 0;
      }
      const pods = await withKube((kube) => demo(kube, state, perNode));
      out(p, pods, pods.map((x) => `${x.namespace}/${x.name}\t${x.node}\t${x.ip}`).join('\n'));
      return 0;
    }
    case 'probe': {
      const p = parse(rest, { port: 'string', protocol: 'string', 'timeout-ms': 'string' });
      if (p.positionals.length !== 2) throw new UserError('usage: trellis lab probe FROM TO --port N');
      const port = intFlag(p, 'port');
      if (port === undefined || port < 1 || port > 65535)
        throw new UserError('--port N (1-65535) is required');
      const timeoutMs = intFlag(p, 'timeout-ms', 1000) ?? 1000;
      const state = requireState();
      const [from, to] = p.positionals as [string, string];
      const r = await withKube((kube) =>
        labProbe(kube, state, from, to, port, parseProtocol(p.strings.protocol), timeoutMs),
      );
      out(
        p,
        r,
        `${r.from} -> ${r.to} (${r.ip}) ${r.port}/${r.protocol}: ${r.connected ? 'connected' : `not connected (${r.error ?? 'no answer'})`}`,
      );
      return r.connected ? 0 : 1;
    }
    default:
      throw new UserError(`unknown lab command "${cmd ?? ''}"\n\n${USAGE}`);
  }
}

async function ipam(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (cmd !== 'show') throw new UserError('usage: trellis ipam show [--json]');
  const p = parse(rest, CLUSTER_FLAGS);
  const target = clusterTarget(p);
  const file = join(REPO, 'src', 'ipam', 'show.ts');
  if (!existsSync(file)) throw new UserError('this build has no IPAM view yet (src/ipam/show.ts is missing)');
  const mod = (await import(pathToFileURL(file).href)) as {
    ipamShow: (kube: KubeClient, o: { json: boolean }) => Promise<string>;
  };
  const text = await withCluster(target, (kube) => mod.ipamShow(kube, { json: !!p.booleans.json }));
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'lab':
      return lab(rest);
    case 'connectivity-test': {
      const p = parse(rest, {
        ...CLUSTER_FLAGS,
        namespace: 'string',
        image: 'string',
        outside: 'string',
        keep: 'boolean',
        network: 'string',
      });
      const target = clusterTarget(p);
      if (p.strings.network && (!target.lab || target.lab.realNodes))
        throw new UserError('--network works on the simulated lab only (pods need extra networks there)');
      if (!target.lab || target.lab.realNodes) {
        const report = await withCluster(target, (kube) =>
          clusterConnectivityTest(kube, target, {
            namespace: p.strings.namespace ?? 'trellis-connectivity',
            image: p.strings.image ?? `trellis/probe:${chartAppVersion()}`,
            outside: p.strings.outside ?? target.lab?.outside.ip,
            keep: p.booleans.keep,
            say: (l) => process.stderr.write(`• ${l}\n`),
          }),
        );
        out(p, report, renderMatrix(report));
        return report.ok ? 0 : 1;
      }
      const state = target.lab;
      const report = await withKube((kube) => connectivityTest(kube, state, 4, p.strings.network));
      if (report.cells.length === 0)
        throw new UserError('no running pods to test; run `trellis lab demo` first');
      out(p, report, renderMatrix(report));
      return report.ok ? 0 : 1;
    }
    case 'ipam':
      return ipam(rest);
    case 'policy': {
      const [sub, ...r] = rest;
      if (sub !== 'explain')
        throw new UserError(
          'usage: trellis policy explain --from X --to Y --port 80/TCP [--kubeconfig F] [--context C]',
        );
      const p = parse(r, { ...CLUSTER_FLAGS, from: 'string', to: 'string', port: 'string' });
      if (!p.strings.from || !p.strings.to)
        throw new UserError('--from and --to are required (NS/POD or IP)');
      const { port, protocol } = parsePortProto(p.strings.port);
      // any cluster, as kubectl finds it; the lab (when it is the target) adds its nodes' addresses
      const target = clusterTarget(p);
      const e = await withCluster(target, (kube) =>
        labExplain(kube, target.lab, p.strings.from!, p.strings.to!, port, protocol),
      );
      out(p, e, renderExplanation(e));
      return 0;
    }
    case 'status': {
      const p = parse(rest, CLUSTER_FLAGS);
      const target = clusterTarget(p);
      const report = summarizeStatus(await withCluster(target, gatherStatus));
      out(p, report, renderClusterStatus(report, target.describe));
      return report.ok ? 0 : 1;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      throw new UserError(`unknown command "${cmd}"\n\n${USAGE}`);
  }
}

if (import.meta.main) {
  const json = process.argv.includes('--json');
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err: unknown) {
    const msg = err instanceof Error ? err.message : String(err);
    if (json) process.stdout.write(`${JSON.stringify({ error: msg })}\n`);
    process.stderr.write(`trellis: ${msg}\n`);
    if (process.env.TRELLIS_DEBUG && err instanceof Error && !(err instanceof UserError))
      process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
