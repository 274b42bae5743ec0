// The probe server every lab pod (and node, and the outside host) runs: a TCP server on port 8080
// that answers one JSON line {pod, sawSource} and closes. sawSource is the peer address the
// receiver saw, which is how the connectivity test proves there was no NAT (or that there was).
// Besides, every pod serves TCP and UDP on 80 and 81 (container ports serve-80-tcp ... as the
// upstream netpol e2e suite names them): TCP answers the same JSON line; UDP answers each datagram
// with it, so a UDP probe counts only when the server answered.
// Usage: node lab/probe.ts --name NS/POD [--port 8080] [--no-serve]
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { parseArgs } from 'node:util';

export const PROBE_PORT = 8080;
/** Ports every lab pod serves over both TCP and UDP (the upstream netpol e2e convention). */
export const SERVE_PORTS = [80, 81] as const;
export const servePortName = (port: number, protocol: 'tcp' | 'udp'): string => `serve-${port}-${protocol}`;

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

/** A UDP server answering every datagram with the JSON answer (dual-stack, IPv4 fallback). */
export function startUdpServer(name: string, port: number, type: 'udp6' | 'udp4' = 'udp6'): Promise<Socket> {
  const sock = createSocket({ type, ipv6Only: false });
  sock.on('message', (_msg, rinfo) => {
    const answer: ProbeAnswer = { pod: name, sawSource: normaliseAddress(rinfo.address) };
    sock.send(`${JSON.stringify(answer)}\n`, rinfo.port, rinfo.address);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (type === 'udp6' && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL'))
        resolve(startUdpServer(name, port, 'udp4'));
      else reject(err);
    });
    sock.bind(port, () => resolve(sock));
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { name: { type: 'string' }, port: { type: 'string' }, 'no-serve': { type: 'boolean' } },
  });
  const name = values.name ?? 'unnamed';
  const port = Number(values.port ?? PROBE_PORT);
  await startProbeServer(name, port);
  if (!values['no-serve'])
    for (const p of SERVE_PORTS) {
      await startProbeServer(name, p);
      await startUdpServer(name, p);
    }
  process.stderr.write(`${JSON.stringify({ msg: 'probe listening', name, port })}\n`);
}
