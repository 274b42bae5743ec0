// Starts a real etcd + kube-apiserver on loopback, the way controller-runtime's envtest does:
// free ports, generated certificates, RBAC on, client-cert auth for an admin kubeconfig. Used by
// the integration tests and by the lab. Process ids are written into the state dir so a later run
// (or `trellis lab down`) can stop a control plane whose parent died.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { ensureControlPlaneBinaries } from './binaries.ts';
import { auditFlags } from './audit.ts';
import { ensurePki, issueClientCert, pkiPaths, type Pki } from './pki.ts';
import { alive, killPids } from '../util/process.ts';

export interface ControlPlaneOptions {
  /** Folder for etcd data, certificates, logs and the kubeconfig. */
  dir: string;
  /** Keep processes alive after this Node process exits (the lab). @default false */
  detached?: boolean;
  /** Address the API server listens on; the lab uses its underlay bridge address. @default 127.0.0.1 */
  bindAddress?: string;
  /** More kube-apiserver flags. */
  extraApiserverArgs?: string[];
  /**
   * Write an audit log (Metadata level) to `<dir>/audit.log`: `true` for every verb, or only these
   * verbs (the lab logs watches, so a test can count the watches each agent holds). @default none
   */
  audit?: boolean | string[];
  /**
   * Serve real kubelets (the real-node lab): Node authorization, ServiceAccount admission (pods get
   * their token volume), a client certificate to reach kubelets for logs/exec, by InternalIP.
   * @default false
   */
  realNodes?: boolean;
}

export interface ControlPlane {
  dir: string;
  server: string;
  /** The audit log, when `audit` was asked for. */
  auditLog?: string;
  kubeconfig: string;
  pki: Pki;
  /** Writes a kubeconfig for a client certificate user (CN=user, O=groups). */
  kubeconfigFor(name: string, user: string, groups?: string[]): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolvePort(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

function writeKubeconfig(
  path: string,
  server: string,
  pki: Pki,
  cert: string,
  key: string,
  user: string,
): void {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  const cfg = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'trellis', cluster: { server, 'certificate-authority-data': b64(pki.caCert) } }],
    users: [{ name: user, user: { 'client-certificate-data': b64(cert), 'client-key-data': b64(key) } }],
    contexts: [{ name: 'trellis', context: { cluster: 'trellis', user } }],
    'current-context': 'trellis',
  };
  // JSON is valid YAML; kubectl and client-node both read it.
  writeFileSync(path, JSON.stringify(cfg, null, 2), { mode: 0o600 });
}

function startProcess(bin: string, args: string[], logFile: string, detached: boolean): ChildProcess {
  const out = openSync(logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', out, out], detached });
  if (detached) child.unref();
  return child;
}

/** How each component was started, so a fault test can stop and start it again as it was. */
const COMPONENTS_FILE = 'components.json';
export type ComponentName = 'etcd' | 'kube-apiserver';
interface ComponentRecord {
  bin: string;
  args: string[];
  log: string;
  pid: number | undefined;
  server?: string;
}
type Components = Record<ComponentName, ComponentRecord>;

function readComponents(dir: string): Components {
  const file = join(dir, COMPONENTS_FILE);
  if (!existsSync(file)) throw new Error(`no control plane recorded in ${dir} (${COMPONENTS_FILE} missing)`);
  return JSON.parse(readFileSync(file, 'utf8')) as Components;
}

function writeComponents(dir: string, c: Components): void {
  writeFileSync(join(dir, COMPONENTS_FILE), JSON.stringify(c));
  writeFileSync(join(dir, 'pids.json'), JSON.stringify([c['kube-apiserver'].pid, c.etcd.pid]));
}

/**
 * Stops one component of a recorded control plane (SIGTERM, SIGKILL after 10 s), keeping its data,
 * for fault tests: an API server outage, an etcd restart. Works from another process than the one
 * that started it (the lab's control plane is detached).
 */
export async function stopComponent(dir: string, name: ComponentName): Promise<void> {
  const c = readComponents(dir);
  const pid = c[name].pid;
  if (alive(pid)) {
    process.kill(pid!, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    if (alive(pid)) process.kill(pid!, 'SIGKILL');
    while (alive(pid)) await sleep(20);
  }
  c[name].pid = undefined;
  writeComponents(dir, c);
}

/** Starts a stopped component again with the arguments, ports and data it had (detached). */
export function startComponent(dir: string, name: ComponentName): number {
  const c = readComponents(dir);
  if (alive(c[name].pid)) throw new Error(`${name} is already running (pid ${c[name].pid})`);
  const child = startProcess(c[name].bin, c[name].args, c[name].log, true);
  c[name].pid = child.pid;
  writeComponents(dir, c);
  return child.pid ?? 0;
}

/** Waits until the recorded API server answers /readyz (after a restart of it or of etcd). */
export async function waitApiServerReady(dir: string, timeoutMs = 90_000): Promise<void> {
  const c = readComponents(dir);
  await waitHealthy(
    c['kube-apiserver'].server!,
    pkiPaths(join(dir, 'pki')),
    timeoutMs,
    c['kube-apiserver'].log,
  );
}

/** Stops processes recorded in a state dir by an earlier start (crashed test run, lab down). */
export function killRecorded(dir: string): void {
  const pidFile = join(dir, 'pids.json');
  if (!existsSync(pidFile)) return;
  const pids = JSON.parse(readFileSync(pidFile, 'utf8')) as number[];
  killPids(pids);
  rmSync(pidFile, { force: true });
}

async function waitHealthy(server: string, pki: Pki, timeoutMs: number, logFile: string): Promise<void> {
  const agent = new Agent({
    connect: {
      ca: readFileSync(pki.caCert),
      cert: readFileSync(pki.adminCert),
      key: readFileSync(pki.adminKey),
    },
  });
  const deadline = Date.now() + timeoutMs;
  let last = '';
  try {
    while (Date.now() < deadline) {
      try {
        const res = await request(`${server}/readyz`, { dispatcher: agent });
        last = await res.body.text();
        if (res.statusCode === 200) return;
      } catch (err: unknown) {
        last = String(err);
      }
      await sleep(250);
    }
  } finally {
    await agent.close();
  }
  throw new Error(`kube-apiserver not ready after ${timeoutMs} ms (${last.slice(0, 300)}); see ${logFile}`);
}

/** What a control plane serving real kubelets needs beyond envtest's flags. */
function realNodeFlags(pki: Pki): string[] {
  const { cert, key } = issueClientCert(pki, 'apiserver-kubelet-client', 'kube-apiserver-kubelet-client', [
    'system:masters',
  ]);
  return [
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    `--kubelet-client-certificate=${cert}`,
    `--kubelet-client-key=${key}`,
    '--kubelet-preferred-address-types=InternalIP',
  ];
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const dir = opts.dir;
  const detached = opts.detached ?? false;
  const bindAddress = opts.bindAddress ?? '127.0.0.1';
  killRecorded(dir);
  mkdirSync(dir, { recursive: true });
  const bins = ensureControlPlaneBinaries();
  const pki = ensurePki(join(dir, 'pki'), [bindAddress]);
  const etcdData = join(dir, 'etcd');
  rmSync(etcdData, { recursive: true, force: true });
  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;

  const etcd = startProcess(
    bins.etcd,
    [
      `--data-dir=${etcdData}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync=true',
      '--quota-backend-bytes=4294967296',
      '--log-level=warn',
    ],
    join(dir, 'etcd.log'),
    detached,
  );

  const server = `https://${bindAddress}:${apiPort}`;
  const audit = opts.audit ? auditFlags(dir, opts.audit === true ? undefined : opts.audit) : undefined;
  const apiLog = join(dir, 'kube-apiserver.log');
  const apiserver = startProcess(
    bins.kubeApiserver,
    [
      `--etcd-servers=${etcdUrl}`,
      `--secure-port=${apiPort}`,
      `--bind-address=${bindAddress}`,
      `--advertise-address=${bindAddress}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      ...(opts.realNodes
        ? realNodeFlags(pki)
        : ['--authorization-mode=RBAC', '--disable-admission-plugins=ServiceAccount']),
      '--v=1',
      ...(audit?.args ?? []),
      ...(opts.extraApiserverArgs ?? []),
    ],
    apiLog,
    detached,
  );
  writeFileSync(join(dir, 'pids.json'), JSON.stringify([apiserver.pid, etcd.pid]));
  writeFileSync(
    join(dir, COMPONENTS_FILE),
    JSON.stringify({
      etcd: { bin: bins.etcd, args: etcd.spawnargs.slice(1), log: join(dir, 'etcd.log'), pid: etcd.pid },
      'kube-apiserver': {
        bin: bins.kubeApiserver,
        args: apiserver.spawnargs.slice(1),
        log: apiLog,
        pid: apiserver.pid,
        server,
      },
    } satisfies Components),
  );

  const exited = new Promise<never>((_, reject) => {
    for (const [name, child] of [
      ['etcd', etcd],
      ['kube-apiserver', apiserver],
    ] as const) {
      child.once('exit', (code) =>
        reject(new Error(`${name} exited early with code ${code}; see ${dir}/${name}.log`)),
      );
    }
  });
  exited.catch(() => undefined);
  await Promise.race([waitHealthy(server, pki, 90_000, apiLog), exited]);

  const kubeconfig = join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, server, pki, pki.adminCert, pki.adminKey, 'trellis-admin');

  return {
    dir,
    server,
    ...(audit ? { auditLog: audit.log } : {}),
    kubeconfig,
    pki,
    kubeconfigFor(name, user, groups = []) {
      const { cert, key } = issueClientCert(pki, name, user, groups);
      const path = join(dir, `${name}.kubeconfig`);
      writeKubeconfig(path, server, pki, cert, key, user);
      return path;
    },
    async stop() {
      for (const child of [apiserver, etcd]) {
        if (child.exitCode === null) {
          child.kill('SIGTERM');
          await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
          if (child.exitCode === null) child.kill('SIGKILL');
        }
      }
      rmSync(join(dir, 'pids.json'), { force: true });
    },
  };
}
