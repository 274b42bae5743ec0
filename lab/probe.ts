// The probe server every lab pod (and node, and the outside host) runs: a TCP server on port 8080
// that answers one JSON line {pod, sawSource} and closes. sawSource is the peer address the
// receiver saw, which is how the connectivity test proves there was no NAT (or that there was).
// Usage: node lab/probe.ts --name NS/POD [--port 8080]
import { createServer, type Server } from 'node:net';
import { parseArgs } from 'node:util';

export const PROBE_PORT = 8080;

export interface ProbeAnswer {
  pod: string;
  sawSource: string;
}

export function normaliseAddress(a: string | undefined): string {
  return (a ?? '').replace(/^::ffff:/, '');
}

export function startProbeServer(name: string, port = PROBE_PORT, host = '::'): Promise<Server> {
  const server = createServer((sock) => {
    const answer: ProbeAnswer = { pod: name, sawSource: normaliseAddress(sock.remoteAddress) };
    sock.on('error', () => undefined);
    sock.end(`${JSON.stringify(answer)}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      // a pod netns may have IPv6 disabled; fall back to IPv4 only
      if (host === '::' && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL')) {
        resolve(startProbeServer(name, port, '0.0.0.0'));
      } else reject(err);
    });
    server.listen({ port, host, ipv6Only: false }, () => resolve(server));
  });
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { name: { type: 'string' }, port: { type: 'string' } } });
  const name = values.name ?? 'unnamed';
  const port = Number(values.port ?? PROBE_PORT);
  await startProbeServer(name, port);
  process.stderr.write(`${JSON.stringify({ msg: 'probe listening', name, port })}\n`);
}
