// The CNI request checked at the edge, before any of it reaches IPAM, the API server or a
// command line. Every field a runtime (or a tenant's NetworkAttachmentDefinition) controls is
// parsed into a typed value here, and a bad one is refused with the spec's code (4 for the
// environment, 7 for the configuration) and a message naming the field. What passes contains
// nothing that iproute2's batch parser treats specially, so commands can be built from it.
import { isIPv4, isIPv6 } from 'node:net';
import { CniError, CniErrorCode } from './errors.ts';
import {
  CNI_COMMANDS,
  parseCniArgs,
  type CniAttachment,
  type CniCommand,
  type CniEnv,
  type CniResult,
  type CniRoute,
  type NetConf,
} from './types.ts';
import { assertSupportedVersion } from './version.ts';

/** Lowest and highest MTU the kernel accepts on a veth (IPv4 minimum; 64 KiB - 1). */
export const MTU_MIN = 68;
export const MTU_MAX = 65535;
/** Longest CNI_CONTAINERID accepted (runtimes use 64 hex characters). */
const CONTAINER_ID_MAX = 256;
/** Longest path accepted in CNI_NETNS (PATH_MAX). */
const PATH_MAX = 4096;
/** Longest unix socket path (sun_path is 108 bytes with its NUL). */
const SOCKET_PATH_MAX = 107;

/** The spec's character set for container IDs and network names (libcni's regexp). */
const SPEC_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Kubernetes DNS-1123 subdomain (pod names) and label (namespaces). */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const UID = /^[a-zA-Z0-9-]{1,64}$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

function envError(field: string, msg: string): CniError {
  return new CniError(CniErrorCode.InvalidEnvironment, `${field}: ${msg}`);
}

function configError(field: string, msg: string): CniError {
  return new CniError(CniErrorCode.InvalidConfig, `network configuration field "${field}": ${msg}`);
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Why a name is not a usable interface name, or undefined when it is: the kernel's rules
 * (1-15 bytes, not "." or "..", no "/", ":" or whitespace), libcni's (the same), and ours:
 * printable ASCII without the quote, backslash and "#" characters that `ip -batch` parses.
 */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name) > 15) return 'is longer than 15 bytes (the kernel limit)';
  if (name === '.' || name === '..') return 'may not be "." or ".."';
  if (/[/:\s]/.test(name)) return 'may not contain "/", ":" or whitespace';
  if (!/^[\x21-\x7e]+$/.test(name)) return 'may contain printable ASCII characters only';
  if (/["'\\#]/.test(name)) return 'may not contain quotes, backslashes or "#"';
  return undefined;
}

export function isIp(v: unknown): v is string {
  return typeof v === 'string' && (isIPv4(v) || isIPv6(v));
}

/** `addr/prefix` with a prefix in range for the family (host bits allowed: CNI results carry them). */
export function isCidr(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  const slash = v.indexOf('/');
  if (slash < 0) return false;
  const ip = v.slice(0, slash);
  const plen = v.slice(slash + 1);
  if (!/^\d{1,3}$/.test(plen)) return false;
  if (isIPv4(ip)) return Number(plen) <= 32;
  if (isIPv6(ip)) return Number(plen) <= 128;
  return false;
}

function containerID(v: string | undefined, field: string): string {
  if (v === undefined || v === '') throw envError(field, 'is required and must not be empty');
  if (v.length > CONTAINER_ID_MAX) throw envError(field, `is longer than ${CONTAINER_ID_MAX} characters`);
  if (!SPEC_ID.test(v)) {
    throw envError(
      field,
      `${show(v)} is not a container ID: letters, digits, "_", "." and "-", starting with a letter or digit`,
    );
  }
  return v;
}

function ifname(v: string | undefined, field: string): string {
  if (v === undefined) throw envError(field, 'is required');
  const problem = interfaceNameProblem(v);
  if (problem) throw envError(field, `interface name ${show(v)} ${problem}`);
  return v;
}

function netnsPath(v: string | undefined): string {
  if (v === undefined || v === '') throw envError('CNI_NETNS', 'is required');
  if (!v.startsWith('/') || v.length > PATH_MAX || v.includes('\0')) {
    throw envError('CNI_NETNS', `${show(v)} is not an absolute path`);
  }
  return v;
}

/** CNI_ARGS: the Kubernetes pod identity, checked because it is written into IPAM records. */
function cniArgs(v: string | undefined): Record<string, string> {
  if (v === undefined) return {};
  if (v.length > 8192) throw envError('CNI_ARGS', 'is longer than 8192 characters');
  const args = parseCniArgs(v);
  const check = (key: string, re: RegExp, max: number, what: string): void => {
    const value = args[key];
    if (value === undefined) return;
    if (value.length > max || !re.test(value))
      throw envError(`CNI_ARGS ${key}`, `${show(value)} is not ${what}`);
  };
  check('K8S_POD_NAMESPACE', DNS_LABEL, 63, 'a Kubernetes namespace name');
  check('K8S_POD_NAME', DNS_SUBDOMAIN, 253, 'a Kubernetes pod name');
  check('K8S_POD_UID', UID, 64, 'a Kubernetes UID');
  check('K8S_POD_INFRA_CONTAINER_ID', SPEC_ID, CONTAINER_ID_MAX, 'a container ID');
  return args;
}

/** Environment variables each verb needs (spec 1.1, "Parameters"). */
export const REQUIRED_ENV: Record<CniCommand, (keyof CniEnv)[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  STATUS: [],
  GC: [],
  VERSION: [],
};

/** The environment of one request with each present field checked (code 4 otherwise). */
export function validateEnv(raw: unknown): CniEnv {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw envError('environment', 'is not an object');
  const r = raw as Record<string, unknown>;
  for (const key of ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']) {
    if (r[key] !== undefined && typeof r[key] !== 'string') throw envError(key, 'must be a string');
  }
  const command = r.CNI_COMMAND as string | undefined;
  if (!command || !(CNI_COMMANDS as readonly string[]).includes(command)) {
    throw envError(
      'CNI_COMMAND',
      command ? `unknown command ${show(command)}; expected one of ${CNI_COMMANDS.join(', ')}` : 'is not set',
    );
  }
  const env: CniEnv = { CNI_COMMAND: command as CniCommand };
  const required = REQUIRED_ENV[env.CNI_COMMAND];
  const missing = required.filter((k) => r[k] === undefined || r[k] === '');
  if (missing.length > 0) throw envError(missing.join(', '), `${command} needs it in the environment`);
  const get = (k: string): string | undefined => (r[k] === '' ? undefined : (r[k] as string | undefined));
  if (get('CNI_CONTAINERID') !== undefined)
    env.CNI_CONTAINERID = containerID(get('CNI_CONTAINERID'), 'CNI_CONTAINERID');
  if (get('CNI_IFNAME') !== undefined) env.CNI_IFNAME = ifname(get('CNI_IFNAME'), 'CNI_IFNAME');
  if (get('CNI_NETNS') !== undefined) env.CNI_NETNS = netnsPath(get('CNI_NETNS'));
  if (get('CNI_ARGS') !== undefined) {
    cniArgs(get('CNI_ARGS'));
    env.CNI_ARGS = get('CNI_ARGS')!;
  }
  const path = get('CNI_PATH');
  if (path !== undefined) {
    if (path.length > PATH_MAX || path.includes('\0')) throw envError('CNI_PATH', 'is not a path list');
    env.CNI_PATH = path;
  }
  return env;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(o: Record<string, unknown>, key: string, field: string, max = 1024): void {
  const v = o[key];
  if (v === undefined) return;
  if (typeof v !== 'string') throw configError(field, `must be a string, not ${show(v)}`);
  if (v.length > max) throw configError(field, `is longer than ${max} characters`);
}

function routes(v: unknown, field: string): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) throw configError(field, 'must be a list of routes');
  v.forEach((r: unknown, i) => {
    if (!isObject(r)) throw configError(`${field}[${i}]`, 'must be an object');
    if (!isCidr(r.dst)) throw configError(`${field}[${i}].dst`, `${show(r.dst)} is not a CIDR`);
    if (r.gw !== undefined && !isIp(r.gw))
      throw configError(`${field}[${i}].gw`, `${show(r.gw)} is not an IP address`);
    for (const k of ['mtu', 'scope', 'table', 'priority'] as const) {
      if (r[k] !== undefined && !Number.isSafeInteger(r[k]))
        throw configError(`${field}[${i}].${k}`, 'must be an integer');
    }
  });
}

function prevResult(v: unknown): void {
  if (v === undefined) return;
  if (!isObject(v)) throw configError('prevResult', 'must be an object');
  const p = v as Partial<Record<keyof CniResult, unknown>>;
  if (p.interfaces !== undefined) {
    if (!Array.isArray(p.interfaces)) throw configError('prevResult.interfaces', 'must be a list');
    p.interfaces.forEach((i: unknown, n) => {
      const f = `prevResult.interfaces[${n}]`;
      if (!isObject(i) || typeof i.name !== 'string') throw configError(f, 'must be an object with a name');
      if (i.mac !== undefined && (typeof i.mac !== 'string' || !MAC.test(i.mac)))
        throw configError(`${f}.mac`, `${show(i.mac)} is not a MAC address`);
      if (i.sandbox !== undefined && typeof i.sandbox !== 'string')
        throw configError(`${f}.sandbox`, 'must be a string');
    });
  }
  if (p.ips !== undefined) {
    if (!Array.isArray(p.ips)) throw configError('prevResult.ips', 'must be a list');
    p.ips.forEach((ip: unknown, n) => {
      const f = `prevResult.ips[${n}]`;
      if (!isObject(ip)) throw configError(f, 'must be an object');
      if (!isCidr(ip.address)) throw configError(`${f}.address`, `${show(ip.address)} is not a CIDR`);
      if (ip.gateway !== undefined && !isIp(ip.gateway))
        throw configError(`${f}.gateway`, `${show(ip.gateway)} is not an IP address`);
      if (ip.interface !== undefined && !Number.isSafeInteger(ip.interface))
        throw configError(`${f}.interface`, 'must be an integer index');
    });
  }
  routes(p.routes, 'prevResult.routes');
}

function attachments(v: unknown, field: string): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) throw configError(field, 'must be a list of {containerID, ifname}');
  v.forEach((a: unknown, i) => {
    if (!isObject(a)) throw configError(`${field}[${i}]`, 'must be an object');
    const att = a as Partial<Record<keyof CniAttachment, unknown>>;
    if (typeof att.containerID !== 'string' || !SPEC_ID.test(att.containerID))
      throw configError(`${field}[${i}].containerID`, `${show(att.containerID)} is not a container ID`);
    if (typeof att.ifname !== 'string' || interfaceNameProblem(att.ifname))
      throw configError(`${field}[${i}].ifname`, `${show(att.ifname)} is not an interface name`);
  });
}

/** The network configuration with each field Trellis reads checked (code 7, or 1 for cniVersion). */
export function validateConfig(raw: unknown): NetConf {
  if (!isObject(raw)) throw configError('(root)', 'the configuration must be a JSON object');
  if (raw.cniVersion !== undefined && typeof raw.cniVersion !== 'string')
    throw configError('cniVersion', `must be a string, not ${show(raw.cniVersion)}`);
  assertSupportedVersion(raw.cniVersion);
  if (raw.name !== undefined) {
    if (typeof raw.name !== 'string' || raw.name.length > 253 || !SPEC_ID.test(raw.name))
      throw configError(
        'name',
        `${show(raw.name)} is not a network name (letters, digits, "_", "." and "-", starting with a letter or digit)`,
      );
  }
  optString(raw, 'type', 'type', 253);
  optString(raw, 'clusterNetwork', 'clusterNetwork', 253);
  optString(raw, 'socket', 'socket', SOCKET_PATH_MAX);
  if (raw.mtu !== undefined) {
    const m = raw.mtu;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < MTU_MIN || m > MTU_MAX)
      throw configError('mtu', `${show(m)} is not an integer from ${MTU_MIN} to ${MTU_MAX}`);
  }
  if (raw.timeoutSeconds !== undefined) {
    const t = raw.timeoutSeconds;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 110)
      throw configError('timeoutSeconds', `${show(t)} is not an integer from 1 to 110`);
  }
  if (raw.ipam !== undefined) {
    if (!isObject(raw.ipam)) throw configError('ipam', 'must be an object');
    optString(raw.ipam, 'type', 'ipam.type', 253);
    optString(raw.ipam, 'socket', 'ipam.socket', SOCKET_PATH_MAX);
    const pool = raw.ipam.pool;
    if (
      pool !== undefined &&
      (typeof pool !== 'string' || !/^(attachment:)?[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(pool))
    )
      throw configError('ipam.pool', `${show(pool)} is not an attachment pool name`);
    routes(raw.ipam.routes as CniRoute[] | undefined, 'ipam.routes');
  }
  if (raw.runtimeConfig !== undefined) {
    if (!isObject(raw.runtimeConfig)) throw configError('runtimeConfig', 'must be an object');
    const ips = raw.runtimeConfig.ips;
    if (ips !== undefined) {
      if (!Array.isArray(ips) || ips.length > 16)
        throw configError('runtimeConfig.ips', 'must be a list of addresses');
      ips.forEach((ip: unknown, i) => {
        if (!isIp(ip) && !isCidr(ip))
          throw configError(`runtimeConfig.ips[${i}]`, `${show(ip)} is not an IP address or CIDR`);
      });
    }
    const mac = raw.runtimeConfig.mac;
    if (mac !== undefined && (typeof mac !== 'string' || !MAC.test(mac)))
      throw configError('runtimeConfig.mac', `${show(mac)} is not a MAC address`);
  }
  if (raw.args !== undefined && !isObject(raw.args)) throw configError('args', 'must be an object');
  prevResult(raw.prevResult);
  attachments(raw['cni.dev/valid-attachments'], 'cni.dev/valid-attachments');
  attachments(raw['cni.dev/attachments'], 'cni.dev/attachments');
  return raw as unknown as NetConf;
}
