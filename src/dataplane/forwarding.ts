// Node-wide kernel settings the routed pod network needs: forwarding on, and reverse-path
// filtering no stricter than loose, because node-to-pod paths over vxlan are asymmetric (a
// reply may come back on the underlay while the request left on the vxlan device).
import { readSysctl, writeSysctl } from './sysctl.ts';

export function enableRouting(devices: string[] = []): string[] {
  const changed: string[] = [];
  if (writeSysctl(['net', 'ipv4', 'ip_forward'], '1')) changed.push('net.ipv4.ip_forward=1');
  if (readSysctl(['net', 'ipv6', 'conf', 'all', 'forwarding']) !== undefined) {
    if (writeSysctl(['net', 'ipv6', 'conf', 'all', 'forwarding'], '1'))
      changed.push('net.ipv6.conf.all.forwarding=1');
  }
  for (const dev of ['all', 'default', ...devices]) {
    const key = ['net', 'ipv4', 'conf', dev, 'rp_filter'];
    if (readSysctl(key) === '1' && writeSysctl(key, '2')) changed.push(`net.ipv4.conf.${dev}.rp_filter=2`);
  }
  return changed;
}
