// One libcni-like runner, used by the agent (delegating extra networks to reference plugins) and
// by the lab (calling our plugin the way a container runtime does). It executes a network config
// list against the plugin binaries of a bin dir: CNI_* environment plus config on stdin, each
// plugin in order with prevResult threaded through (converted to the list's version), runtime
// capability args only for plugins that declare them, DEL in reverse order, CHECK with the cached
// result, GC with the valid attachments, STATUS for each plugin. Plugins are spawned with argv,
// never through a shell. With a ResultCache, ADD records config+result and DEL/CHECK use what ADD
// used even after a restart or after the caller's config changed.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { ResultCache, type CachedAttachment } from './cache.ts';
import { convertResult } from './version.ts';
import type { NetworkConfigList, PluginConf } from './runner-config.ts';
import { execPlugin } from './runner-exec.ts';
import type { CniResult } from './types.ts';

export type { NetworkConfigList, PluginConf } from './runner-config.ts';

export interface RuntimeConf {
  containerId: string;
  netns: string;
  ifName: string;
  /** CNI_ARGS pairs. */
  args: [string, string][];
  /** libcni capability args (portMappings, ips, mac, bandwidth, ...). */
  capabilityArgs: Record<string, unknown>;
}

export interface RunnerOptions {
  /** Directories searched for plugin binaries, in order (CNI_PATH). */
  binDirs: string[];
  /** Prefix for each plugin command (e.g. `ip netns exec node1` to run in a node's netns). */
  wrap?: string[];
  /** Per plugin call. @default 60000 */
  timeoutMs?: number;
  /** Keeps config+result per attachment; without it DEL/CHECK need the caller's result. */
  cache?: ResultCache;
}

/** A plugin's CNI error (or a failure to run it), naming the plugin. */
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

/** Where the plugin binary is, or undefined when no bin dir has an executable of that name. */
export function findPlugin(binDirs: string[], type: string): string | undefined {
  if (!/^[A-Za-z0-9_.-]+$/.test(type) || type === '.' || type === '..') return undefined;
  for (const dir of binDirs) {
    const exe = join(dir, type);
    try {
      accessSync(exe, constants.X_OK);
      return exe;
    } catch {
      // try the next dir
    }
  }
  return undefined;
}

/** Plugins of the list that cannot run here (and IPAM plugins they name), for STATUS. */
export function missingPlugins(binDirs: string[], list: NetworkConfigList): string[] {
  const types = new Set<string>();
  for (const p of list.plugins) {
    types.add(p.type);
    const ipam = p.ipam as { type?: unknown } | undefined;
    if (ipam && typeof ipam.type === 'string') types.add(ipam.type);
  }
  return [...types].filter((t) => !findPlugin(binDirs, t));
}

function versionAtLeast(v: string, min: string): boolean {
  const a = v.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

/** A result in the shape of `version` (libcni converts prevResult to the config's version). */
export function resultForVersion(result: CniResult, version: string): CniResult {
  if (result.cniVersion === version) return result;
  if (version.startsWith('0.') || version === '1.0.0') return convertResult(result, version);
  // Up-converting a 0.x result: ips[].version is gone in 1.x.
  return { ...result, cniVersion: version, ips: result.ips?.map(({ version: _v, ...ip }) => ip) };
}

function stdinFor(
  list: NetworkConfigList,
  plugin: PluginConf,
  rt: RuntimeConf | undefined,
  extra: Record<string, unknown>,
): string {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (rt) {
    const runtimeConfig: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
      if (on && rt.capabilityArgs[cap] !== undefined) runtimeConfig[cap] = rt.capabilityArgs[cap];
    }
    if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  }
  return JSON.stringify({ ...conf, ...extra });
}

type Verb = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';

async function invoke(
  opts: RunnerOptions,
  verb: Verb,
  list: NetworkConfigList,
  plugin: PluginConf,
  rt: RuntimeConf | undefined,
  extra: Record<string, unknown> = {},
): Promise<CniResult | undefined> {
  const exe = findPlugin(opts.binDirs, plugin.type);
  if (!exe) {
    throw new CniInvokeError(
      plugin.type,
      999,
      `plugin binary "${plugin.type}" not found in ${opts.binDirs.join(':')}`,
    );
  }
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: verb,
    CNI_PATH: opts.binDirs.join(':'),
  };
  if (rt) {
    env.CNI_CONTAINERID = rt.containerId;
    env.CNI_NETNS = rt.netns;
    env.CNI_IFNAME = rt.ifName;
    env.CNI_ARGS = rt.args.map(([k, v]) => `${k}=${v}`).join(';');
  }
  const out = await execPlugin([...(opts.wrap ?? []), exe], {
    input: stdinFor(list, plugin, rt, extra),
    env,
    timeoutMs: opts.timeoutMs ?? 60_000,
  }).catch((err: unknown) => {
    // Too many children on this node right now: the spec's "try again later".
    throw new CniInvokeError(plugin.type, 11, err instanceof Error ? err.message : String(err));
  });
  if (out.code !== 0) {
    let err: { code?: number; msg?: string; details?: string } = {};
    try {
      err = JSON.parse(out.stdout) as typeof err;
    } catch {
      err = {
        code: 999,
        msg: out.timedOut ? `killed after ${opts.timeoutMs ?? 60_000} ms` : `exit ${out.code}`,
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
  if (verb !== 'ADD') return undefined;
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

function key(list: NetworkConfigList, rt: RuntimeConf) {
  return { networkName: list.name, containerId: rt.containerId, ifName: rt.ifName };
}

/**
 * ADD through the chain; the last plugin's result is the network's. With a cache the attachment is
 * recorded before the first plugin runs (so a crash mid-ADD still leaves DEL what to undo) and
 * again with the result.
 */
export async function addNetworkList(
  opts: RunnerOptions,
  list: NetworkConfigList,
  rt: RuntimeConf,
): Promise<CniResult> {
  const record: CachedAttachment = {
    ...key(list, rt),
    netns: rt.netns,
    config: list,
    cniArgs: rt.args,
    capabilityArgs: rt.capabilityArgs,
  };
  await opts.cache?.save(record);
  let prev: CniResult | undefined;
  for (const plugin of list.plugins) {
    const extra = prev ? { prevResult: resultForVersion(prev, list.cniVersion) } : {};
    prev = await invoke(opts, 'ADD', list, plugin, rt, extra);
  }
  const result = prev ?? { cniVersion: list.cniVersion };
  await opts.cache?.save({ ...record, result });
  return result;
}

/** What ADD used for this attachment: the cache first, then the caller's list and result. */
async function recall(
  opts: RunnerOptions,
  list: NetworkConfigList | undefined,
  rt: RuntimeConf,
  networkName: string,
): Promise<{ list?: NetworkConfigList; rt: RuntimeConf; result?: CniResult }> {
  const cached = await opts.cache?.load({ networkName, containerId: rt.containerId, ifName: rt.ifName });
  if (!cached) return list ? { list, rt } : { rt };
  return {
    list: cached.config,
    rt: { ...rt, args: cached.cniArgs, capabilityArgs: cached.capabilityArgs },
    ...(cached.result ? { result: cached.result } : {}),
  };
}

/** CHECK through the chain with the cached (or given) ADD result as prevResult. */
export async function checkNetworkList(
  opts: RunnerOptions,
  list: NetworkConfigList,
  rt: RuntimeConf,
  given?: CniResult,
): Promise<void> {
  const r = await recall(opts, list, rt, list.name);
  const use = r.list ?? list;
  if (use.disableCheck) return;
  const prev = given ?? r.result;
  if (!prev) {
    throw new CniInvokeError(
      use.plugins[0]?.type ?? '?',
      999,
      `no cached result for ${rt.containerId}/${rt.ifName} on network ${use.name}: ADD did not finish`,
    );
  }
  for (const plugin of use.plugins) {
    await invoke(opts, 'CHECK', use, plugin, r.rt, { prevResult: resultForVersion(prev, use.cniVersion) });
  }
}

/**
 * DEL in reverse order with what ADD used (cached config, args and result); every plugin is
 * called even when one fails, the first error is thrown after, and the cache entry is removed
 * only when all succeeded. `networkName` finds the cache when the caller no longer has the list
 * (a NAD deleted since ADD).
 */
export async function delNetworkList(
  opts: RunnerOptions,
  list: NetworkConfigList | undefined,
  rt: RuntimeConf,
  given?: CniResult,
  networkName = list?.name,
): Promise<void> {
  if (!networkName) throw new Error('delNetworkList needs a list or a network name');
  const r = await recall(opts, list, rt, networkName);
  if (!r.list) return; // never added (or already deleted): nothing to undo
  const use = r.list;
  const prev = given ?? r.result;
  let first: unknown;
  for (const plugin of [...use.plugins].reverse()) {
    try {
      await invoke(
        opts,
        'DEL',
        use,
        plugin,
        r.rt,
        prev ? { prevResult: resultForVersion(prev, use.cniVersion) } : {},
      );
    } catch (err: unknown) {
      first ??= err;
    }
  }
  if (first) throw first;
  await opts.cache?.remove({ networkName, containerId: rt.containerId, ifName: rt.ifName });
}

export interface ValidAttachment {
  containerID: string;
  ifname: string;
}

/**
 * GC for one network (spec 1.1): each plugin is told the attachments that are still valid, and
 * cache entries of this network that are not among them are dropped. Lists below 1.1.0 or with
 * disableGC only have their cache pruned, as libcni does.
 */
export async function gcNetworkList(
  opts: RunnerOptions,
  list: NetworkConfigList,
  valid: ValidAttachment[],
): Promise<void> {
  if (!list.disableGC && versionAtLeast(list.cniVersion, '1.1.0')) {
    let first: unknown;
    for (const plugin of list.plugins) {
      try {
        await invoke(opts, 'GC', list, plugin, undefined, { 'cni.dev/valid-attachments': valid });
      } catch (err: unknown) {
        first ??= err;
      }
    }
    if (first) throw first;
  }
  if (!opts.cache) return;
  const keep = new Set(valid.map((v) => `${v.containerID}\u0000${v.ifname}`));
  for (const a of await opts.cache.list(list.name)) {
    if (!keep.has(`${a.containerId}\u0000${a.ifName}`)) await opts.cache.remove(a);
  }
}

/** STATUS (spec 1.1): each plugin says whether it can serve ADD; earlier versions only check binaries. */
export async function statusNetworkList(opts: RunnerOptions, list: NetworkConfigList): Promise<void> {
  const missing = missingPlugins(opts.binDirs, list);
  if (missing.length) {
    throw new CniInvokeError(
      missing[0]!,
      50,
      `network ${list.name}: plugin binary ${missing.map((m) => `"${m}"`).join(', ')} not found in ${opts.binDirs.join(':')}`,
    );
  }
  if (!versionAtLeast(list.cniVersion, '1.1.0')) return;
  for (const plugin of list.plugins) await invoke(opts, 'STATUS', list, plugin, undefined);
}

/** The pod's addresses in a result: IPs on interfaces inside the sandbox (all IPs if unsaid). */
export function podIPs(result: CniResult): string[] {
  const ifs = result.interfaces ?? [];
  const ips = (result.ips ?? []).filter(
    (ip) => ip.interface === undefined || !ifs[ip.interface] || !!ifs[ip.interface]!.sandbox,
  );
  return ips.map((ip) => ip.address.split('/')[0]!);
}
