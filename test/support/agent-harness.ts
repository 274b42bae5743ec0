// The start-up and teardown every CNI e2e file shares: the compiled plugin, our CRDs, a
// ClusterNetwork with this node's Node object, one real agent process in the root netns, and the
// namespaces, links and scratch folder the file makes. It registers its own beforeAll/afterAll, so
// a file's own hooks run after the agent is up and before it stops (vitest stacks after-hooks).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { IPBlockResource } from '../../src/api/group.ts';
import type { IPBlock } from '../../src/api/ipam.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { installCrds } from '../../src/kube/crds.ts';
import { Builtin } from '../../src/kube/resource.ts';
import {
  buildShim,
  cleanupDir,
  cleanupNodeProgramming,
  createTestNetwork,
  delNetns,
  newNetns,
  sh,
  startAgent,
  trySh,
  type Agent,
  type TestNetwork,
} from '../e2e/fixtures/cni-harness.ts';
import { adminClient, kubeconfigPath, uniqueName } from './kube.ts';

export interface AgentHarnessOptions {
  /** Prefix of the ClusterNetwork's unique name and of the scratch folder. */
  name: string;
  /** Prefix of `pod()` namespaces. @default 'tcv' */
  podPrefix?: string;
  v4: string;
  v6: string;
  /** Runs once the ClusterNetwork exists, before the agent starts (what the agent must find). */
  beforeAgent?: (h: AgentHarness) => Promise<void> | void;
}

export interface AgentHarness {
  kube: KubeClient;
  net: TestNetwork;
  /** The running agent; a test that restarts it assigns the new one here, so teardown stops it. */
  agent: Agent;
  /** A folder of the file's own, removed after the file. */
  readonly scratch: string;
  /** A fresh network namespace (any old one of the name is deleted first), deleted after the file. */
  netns(name: string): string;
  /** A pod's namespace `<podPrefix>-<pod>`: its name and path. */
  pod(pod: string): { ns: string; path: string };
  /**
   * A host outside the node: namespace `ns` behind a point-to-point veth (`hostIf` in the root
   * namespace with `hostCidr`, eth0 in `ns` with `nsCidr`), lo up; both removed after the file.
   */
  underlay(ns: string, hostIf: string, hostCidr: string, nsCidr: string): void;
  /** Deletes the root-namespace link after the file (the pair of a veth goes with it). */
  ownLink(name: string): void;
  /**
   * A Pod object in `default` on this node (named uniqueName(prefix)), as the kubelet's would be,
   * deleted after the file. Returns its name.
   */
  createPod(prefix: string, annotations?: Record<string, string>): Promise<string>;
  /** The addresses IPAM holds for a container ID. */
  heldBy(containerID: string): Promise<string[]>;
}

export function useAgentHarness(opts: AgentHarnessOptions): AgentHarness {
  let kube: KubeClient | undefined;
  let net: TestNetwork | undefined;
  let agent: Agent | undefined;
  const namespaces: string[] = [];
  const links: string[] = [];
  const podObjects: string[] = [];
  const scratch = mkdtempSync(join(tmpdir(), `${opts.name}-`));
  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined)
      throw new Error(`the agent harness has no ${what} yet: use it inside a test or hook`);
    return v;
  };

  const h: AgentHarness = {
    get kube() {
      return started(kube, 'API client');
    },
    set kube(v) {
      kube = v;
    },
    get net() {
      return started(net, 'ClusterNetwork');
    },
    set net(v) {
      net = v;
    },
    get agent() {
      return started(agent, 'agent');
    },
    set agent(v) {
      agent = v;
    },
    scratch,
    netns(name) {
      namespaces.push(name);
      return newNetns(name);
    },
    pod(pod) {
      const ns = `${opts.podPrefix ?? 'tcv'}-${pod}`;
      return { ns, path: h.netns(ns) };
    },
    underlay(ns, hostIf, hostCidr, nsCidr) {
      h.netns(ns);
      h.ownLink(hostIf);
      trySh('ip', ['link', 'del', hostIf]);
      sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      sh('ip', ['addr', 'add', hostCidr, 'dev', hostIf]);
      sh('ip', ['link', 'set', hostIf, 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', nsCidr, 'dev', 'eth0']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    },
    ownLink(name) {
      links.push(name);
    },
    async createPod(prefix, annotations) {
      const name = uniqueName(prefix);
      podObjects.push(name);
      await h.kube.create(Builtin.Pod, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'default', ...(annotations ? { annotations } : {}) },
        spec: { nodeName: h.net.node, containers: [{ name: 'c', image: 'none' }] },
      });
      return name;
    },
    async heldBy(containerID) {
      const blocks = await h.kube.listAll<IPBlock>(IPBlockResource);
      return blocks.items.flatMap((b) =>
        Object.entries(b.spec?.allocations ?? {})
          .filter(([, a]) => a.containerID === containerID)
          .map(([ip]) => ip),
      );
    },
  };

  beforeAll(async () => {
    buildShim();
    kube = await adminClient();
    await installCrds(kube);
    net = await createTestNetwork(kube, uniqueName(opts.name), opts.v4, opts.v6);
    await opts.beforeAgent?.(h);
    agent = await startAgent(kubeconfigPath(), net);
  });

  afterAll(async () => {
    await agent?.stop();
    for (const ns of namespaces) delNetns(ns);
    for (const link of links) trySh('ip', ['link', 'del', link]);
    if (agent) cleanupDir(agent.dir);
    rmSync(scratch, { recursive: true, force: true });
    cleanupNodeProgramming();
    for (const name of podObjects) await kube?.delete(Builtin.Pod, name, 'default');
    await kube?.close();
  });

  return h;
}
