// Network configurations as libcni reads them: a conflist (`plugins: [...]`) or a single-plugin
// conf, normalised to one list shape. Used for files in a CNI conf dir (the lab runtime) and for
// a NetworkAttachmentDefinition's spec.config (delegation). Pure parsing with errors that say what
// is wrong with which field.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface PluginConf {
  type: string;
  /** Runtime capabilities the plugin accepts in runtimeConfig (portMappings, ips, mac, bandwidth...). */
  capabilities?: Record<string, boolean>;
  [k: string]: unknown;
}

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  plugins: PluginConf[];
  /** The file it came from, when it came from one. */
  file?: string;
}

export class NetworkConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetworkConfigError';
  }
}

/** Normalises a parsed conf or conflist; `what` names the source in errors. */
export function toConfList(raw: unknown, what: string): NetworkConfigList {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new NetworkConfigError(`${what}: the CNI configuration must be a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  if (typeof o.cniVersion !== 'string' || o.cniVersion === '') {
    throw new NetworkConfigError(`${what}: "cniVersion" is required (e.g. "1.0.0")`);
  }
  if (typeof o.name !== 'string' || o.name === '') {
    throw new NetworkConfigError(`${what}: "name" is required`);
  }
  if (Array.isArray(o.plugins)) {
    if (o.plugins.length === 0) throw new NetworkConfigError(`${what}: "plugins" is empty`);
    o.plugins.forEach((p: unknown, i) => {
      if (typeof p !== 'object' || p === null || typeof (p as PluginConf).type !== 'string') {
        throw new NetworkConfigError(`${what}: plugins[${i}] needs a string "type"`);
      }
    });
    const list: NetworkConfigList = {
      cniVersion: o.cniVersion,
      name: o.name,
      plugins: o.plugins as PluginConf[],
    };
    if (o.disableCheck === true) list.disableCheck = true;
    if (o.disableGC === true) list.disableGC = true;
    return list;
  }
  if (typeof o.type !== 'string' || o.type === '') {
    throw new NetworkConfigError(`${what}: needs either "plugins" (a conflist) or "type" (a single plugin)`);
  }
  const { cniVersion, name, ...plugin } = o;
  return { cniVersion, name: name as string, plugins: [plugin as PluginConf] };
}

/** Parses JSON text of a conf or conflist. */
export function parseConfList(text: string, what: string): NetworkConfigList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err: unknown) {
    throw new NetworkConfigError(
      `${what}: not valid JSON (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  return toConfList(raw, what);
}

/** The list as JSON (what the on-disk cache stores and `--config` shows). */
export function confListJson(list: NetworkConfigList): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...list };
  delete rest.file;
  return rest;
}

/** The .conflist/.conf/.json files of a conf dir, in lexical order ([] when it does not exist). */
function confFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.(conflist|conf|json)$/.test(f))
    .sort();
}

/** The given files of `dir` that parse, in that order; half-written or invalid ones skipped, as libcni does. */
function* parsedConfLists(dir: string, files: string[]): Generator<NetworkConfigList> {
  for (const f of files) {
    const file = join(dir, f);
    let list: NetworkConfigList;
    try {
      list = parseConfList(readFileSync(file, 'utf8'), file);
    } catch {
      continue;
    }
    yield { ...list, file };
  }
}

/** The lexically first .conflist/.conf/.json in a conf dir that parses (what kubelet and libcni pick), or undefined. */
export function loadFirstConfList(dir: string): NetworkConfigList | undefined {
  for (const list of parsedConfLists(dir, confFiles(dir))) return list;
  return undefined;
}

/**
 * The network named `name` from a conf dir: the first .conflist, then .conf/.json (each in lexical
 * order) whose "name" matches (what the NPWG spec asks of a NetworkAttachmentDefinition with no
 * spec.config). Files that do not parse are skipped.
 */
export function loadConfListNamed(dir: string, name: string): NetworkConfigList | undefined {
  const files = confFiles(dir);
  const lists = files.filter((f) => f.endsWith('.conflist'));
  const confs = files.filter((f) => !f.endsWith('.conflist'));
  for (const list of parsedConfLists(dir, [...lists, ...confs])) if (list.name === name) return list;
  return undefined;
}
