// kube-controller-manager and kube-scheduler beside the lab's API server, built from the same
// k8s.io/kubernetes module (hack/build-control-plane.sh --nodes): with them DaemonSets,
// Deployments, ServiceAccounts, the root CA ConfigMap, garbage collection and scheduling happen
// for real. Node CIDR allocation stays off: Trellis's IPAM does not use node.spec.podCIDR.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ControlPlane } from '../../src/controlplane/controlplane.ts';
import { cacheDir } from '../../src/controlplane/binaries.ts';
import { startDetached } from '../spawn.ts';
import type { LabState } from '../state.ts';

type ComponentName = 'kube-controller-manager' | 'kube-scheduler';

export function nodeBinary(name: 'kubelet' | ComponentName): string {
  const path = join(cacheDir(), 'bin', name);
  if (!existsSync(path))
    throw new Error(`${path} is missing: run bash hack/build-control-plane.sh --nodes (a few minutes cold)`);
  return path;
}

/** Starts one control-plane component with the flags both share: the lab's admin kubeconfig, no
 * serving port, no leader election (one instance). */
function startComponent(state: LabState, cp: ControlPlane, name: ComponentName, extra: string[]): void {
  const binary = nodeBinary(name);
  startDetached(state.stateDir, {
    name,
    cmd: [
      binary,
      `--kubeconfig=${cp.kubeconfig}`,
      `--authentication-kubeconfig=${cp.kubeconfig}`,
      `--authorization-kubeconfig=${cp.kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--leader-elect=false',
      ...extra,
      '--v=1',
    ],
    logFile: join(state.stateDir, 'controlplane', `${name}.log`),
    marker: binary,
  });
}

export function startControllers(state: LabState, cp: ControlPlane): void {
  startComponent(state, cp, 'kube-controller-manager', [
    `--root-ca-file=${cp.pki.caCert}`,
    `--service-account-private-key-file=${cp.pki.saKey}`,
    '--use-service-account-credentials=false',
    // a killed node's pods are rescheduled in the lab's time, not a data centre's
    '--node-monitor-grace-period=20s',
  ]);
  startComponent(state, cp, 'kube-scheduler', []);
}
