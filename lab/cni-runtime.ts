// Calls CNI plugins the way a container runtime's libcni does: the lexically first network config
// in the conf dir, each plugin of the list in order with prevResult threaded through, runtimeConfig
// for declared capabilities, DEL in reverse order with the cached ADD result. The lab kubelet uses
// it; it runs in the node's netns so plugins see the node's network.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runAsync } from './sh.ts';

export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [k: string]: unknown;
}

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConf[];
  /** the file it came from */
  file: string;
}

export interface RuntimeConf {
  containerId: string;
  netns: string;
  ifName: string;
  args: [string, string][];
  capabilityArgs: Record<string, unknown>;
}

export interface CniResult {
  cniVersion?: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  [k: string]: unknown;
}

export class CniInvokeError extends Error {
  readonly code: number;
  readonly plugin: string;
  readonly details: string;
  constructor(plugin: string, code: number, msg: string, details = '') {
    super(`CNI plugin ${plugin} failed (code ${code}): ${msg}${details ? `; ${details}` : ''}`);
    this.name = 'CniInvokeError';
    this.plugin = plugin;
    this.code = code;
    this.details = details;
  }
}

/** The lexically first .conflist/.conf/.json in dir (what kubelet and libcni pick), or undefined. */
export function loadFirstConfList(dir: string): NetworkConfigList | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => /\.(conflist|conf|json)$/.test(f))
    .sort();
  for (const f of files) {
    const file = join(dir, f);
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch {
      continue; // half-written or invalid: libcni skips it too
    }
    if (Array.isArray(raw.plugins)) {
      return { ...(raw as Omit<NetworkConfigList, 'file'>), file };
    }
    if (typeof raw.type === 'string') {
      const { cniVersion, name, ...plugin } = raw;
      return { cniVersion: String(cniVersion), name: String(name), plugins: [plugin as PluginConf], file };
    }
  }
  return undefined;
}

function pluginStdin(
  list: NetworkConfigList,
  plugin: PluginConf,
  rt: RuntimeConf,
  prevResult?: CniResult,
): string {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && rt.capabilityArgs[cap] !== undefined) runtimeConfig[cap] = rt.capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  if (prevResult) conf.prevResult = prevResult;
  return JSON.stringify(conf);
}

async function invoke(
  command: 'ADD' | 'DEL' | 'CHECK',
  binDir: string,
  list: NetworkConfigList,
  plugin: PluginConf,
  rt: RuntimeConf,
  prevResult?: CniResult,
  wrap: string[] = [],
): Promise<CniResult | undefined> {
  const exe = join(binDir, plugin.type);
  if (!existsSync(exe))
    throw new CniInvokeError(plugin.type, 999, `plugin binary ${exe} not found in the node's CNI bin dir`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: rt.containerId,
    CNI_NETNS: rt.netns,
    CNI_IFNAME: rt.ifName,
    CNI_ARGS: rt.args.map(([k, v]) => `${k}=${v}`).join(';'),
    CNI_PATH: binDir,
  };
  const out = await runAsync([...wrap, exe], {
    input: pluginStdin(list, plugin, rt, prevResult),
    env,
    timeoutMs: 60_000,
  });
  if (out.status !== 0) {
    let err: { code?: number; msg?: string; details?: string } = {};
    try {
      err = JSON.parse(out.stdout) as typeof err;
    } catch {
      err = {
        code: 999,
        msg: `exit ${out.status}`,
        details: (out.stdout + out.stderr).trim().slice(0, 2000),
      };
    }
    throw new CniInvokeError(
      plugin.type,
      err.code ?? 999,
      err.msg ?? 'no message',
      err.details ?? out.stderr.trim().slice(0, 500),
    );
  }
  if (command !== 'ADD') return undefined;
  try {
    return JSON.parse(out.stdout) as CniResult;
  } catch {
    throw new CniInvokeError(
      plugin.type,
      999,
      `ADD printed something that is not a JSON result: ${out.stdout.slice(0, 300)}`,
    );
  }
}

/** ADD through the whole chain; the last plugin's result is the network's result. */
export async function addNetworkList(
  binDir: string,
  list: NetworkConfigList,
  rt: RuntimeConf,
): Promise<CniResult> {
  let prev: CniResult | undefined;
  for (const plugin of list.plugins) prev = await invoke('ADD', binDir, list, plugin, rt, prev);
  return prev ?? {};
}

/**
 * CHECK through the chain with the cached result as prevResult. `wrap` prefixes each plugin
 * command (e.g. nsenter into the node's netns when the caller runs elsewhere).
 */
export async function checkNetworkList(
  binDir: string,
  list: NetworkConfigList,
  rt: RuntimeConf,
  cached: CniResult,
  wrap: string[] = [],
): Promise<void> {
  if (list.disableCheck) return;
  for (const plugin of list.plugins) await invoke('CHECK', binDir, list, plugin, rt, cached, wrap);
}

/** DEL in reverse order with the cached ADD result; every plugin is called, the first error is thrown. */
export async function delNetworkList(
  binDir: string,
  list: NetworkConfigList,
  rt: RuntimeConf,
  cached?: CniResult,
): Promise<void> {
  let first: unknown;
  for (const plugin of [...list.plugins].reverse()) {
    try {
      await invoke('DEL', binDir, list, plugin, rt, cached);
    } catch (err: unknown) {
      first ??= err;
    }
  }
  if (first) throw first;
}

/** The pod's addresses in a result: IPs on interfaces inside the sandbox (all IPs if unsaid). */
export function podIPs(result: CniResult): string[] {
  const ifs = result.interfaces ?? [];
  const ips = (result.ips ?? []).filter(
    (ip) => ip.interface === undefined || !ifs[ip.interface] || !!ifs[ip.interface].sandbox,
  );
  return ips.map((ip) => ip.address.split('/')[0]);
}
