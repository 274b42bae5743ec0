// Where the API server is and how to authenticate to it, from a kubeconfig or the pod's service
// account. The common shapes (certificates, tokens, CA, in-cluster) are read here directly: loading
// @kubernetes/client-node pulls in its whole generated API, ~80 MB of resident memory in every
// agent on every node, for the few fields below. Anything else (exec plugins, auth providers,
// basic auth, several files in KUBECONFIG) is handed to client-node, loaded only then.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { isIPv6 } from 'node:net';
import { load as loadYaml } from 'js-yaml';

export interface KubeAuth {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  headers: Record<string, string>;
  skipTLSVerify: boolean;
}

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

interface Named<T> {
  name: string;
  cluster?: T;
  user?: T;
  context?: T;
}

interface RawCluster {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
  'proxy-url'?: string;
}

interface RawUser {
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  token?: string;
  tokenFile?: string;
  [other: string]: unknown;
}

interface RawConfig {
  'current-context'?: string;
  contexts?: Named<{ cluster?: string; user?: string }>[];
  clusters?: Named<RawCluster>[];
  users?: Named<RawUser>[];
}

/** User fields this loader understands; any other one sends the kubeconfig to client-node. */
const SIMPLE_USER_FIELDS = new Set([
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'token',
  'tokenFile',
]);

/** Why the kubeconfig needs client-node (exec, auth-provider, ...), or undefined when it does not. */
export function needsFullClient(cluster: RawCluster, user: RawUser): string | undefined {
  const extra = Object.keys(user).filter((k) => !SIMPLE_USER_FIELDS.has(k) && user[k] !== undefined);
  if (extra.length) return `user fields ${extra.join(', ')}`;
  if (cluster['tls-server-name'] || cluster['proxy-url']) return 'cluster tls-server-name or proxy-url';
  return undefined;
}

function fileOrData(base: string, file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) return readFileSync(isAbsolute(file) ? file : join(base, file));
  if (data) return Buffer.from(data, 'base64');
  return undefined;
}

/** Reads one kubeconfig file; undefined when it needs client-node. */
export function parseKubeconfig(path: string, context?: string): KubeAuth | undefined {
  const raw = (loadYaml(readFileSync(path, 'utf8')) ?? {}) as RawConfig;
  const name = context ?? raw['current-context'];
  const ctx = raw.contexts?.find((c) => c.name === name)?.context;
  if (!ctx) {
    if (context) {
      const known = (raw.contexts ?? []).map((c) => c.name);
      throw new Error(
        `kubeconfig ${path} has no context "${context}" (it has: ${known.join(', ') || 'none'})`,
      );
    }
    throw new Error(`kubeconfig ${path} has no current context`);
  }
  const cluster = raw.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster?.server) throw new Error(`kubeconfig ${path} has no current cluster`);
  const user = raw.users?.find((u) => u.name === ctx.user)?.user ?? {};
  if (needsFullClient(cluster, user)) return undefined;
  const base = dirname(path);
  const auth: KubeAuth = {
    server: cluster.server,
    headers: {},
    skipTLSVerify: cluster['insecure-skip-tls-verify'] === true,
  };
  const ca = fileOrData(base, cluster['certificate-authority'], cluster['certificate-authority-data']);
  const cert = fileOrData(base, user['client-certificate'], user['client-certificate-data']);
  const key = fileOrData(base, user['client-key'], user['client-key-data']);
  if (ca) auth.ca = ca;
  if (cert) auth.cert = cert;
  if (key) auth.key = key;
  const token = user.token ?? (user.tokenFile ? readFileSync(user.tokenFile, 'utf8').trim() : undefined);
  if (token) auth.headers.authorization = `Bearer ${token}`;
  return auth;
}

/** The pod's service account (KUBERNETES_SERVICE_HOST/PORT and the mounted token and CA). */
export function inClusterAuth(root = SERVICE_ACCOUNT): KubeAuth {
  const host = process.env.KUBERNETES_SERVICE_HOST!;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https';
  const auth: KubeAuth = {
    server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    headers: { authorization: `Bearer ${readFileSync(join(root, 'token'), 'utf8').trim()}` },
    skipTLSVerify: false,
  };
  if (existsSync(join(root, 'ca.crt'))) auth.ca = readFileSync(join(root, 'ca.crt'));
  return auth;
}

/**
 * Like client-node's loadFromFile / loadFromDefault: the given file, else $KUBECONFIG, else
 * ~/.kube/config, else the in-cluster service account.
 */
export async function loadKubeAuth(path?: string, context?: string): Promise<KubeAuth> {
  const env = process.env.KUBECONFIG;
  const home = join(homedir(), '.kube', 'config');
  const file =
    path ?? (env && !env.includes(':') ? env : undefined) ?? (!env && existsSync(home) ? home : undefined);
  if (file) {
    const auth = parseKubeconfig(file, context);
    if (auth) return auth;
  } else if (
    !env &&
    !context &&
    process.env.KUBERNETES_SERVICE_HOST &&
    existsSync(join(SERVICE_ACCOUNT, 'token'))
  ) {
    return inClusterAuth();
  }
  return fullClientAuth(path, context);
}

/** The general path: client-node resolves what we do not (exec plugins, auth providers, merges). */
async function fullClientAuth(path?: string, context?: string): Promise<KubeAuth> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (context) {
    if (!kc.getContextObject(context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new Error(
        `kubeconfig ${path ?? '(default)'} has no context "${context}" (it has: ${known.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`kubeconfig ${path ?? '(default)'} has no current cluster`);
  const opts: { ca?: Buffer; cert?: Buffer; key?: Buffer; headers?: Record<string, string> } = {};
  await kc.applyToHTTPSOptions(opts as never);
  const auth: KubeAuth = {
    server: cluster.server,
    headers: { ...(opts.headers ?? {}) },
    skipTLSVerify: !!cluster.skipTLSVerify,
  };
  if (opts.ca) auth.ca = opts.ca;
  if (opts.cert) auth.cert = opts.cert;
  if (opts.key) auth.key = opts.key;
  return auth;
}
