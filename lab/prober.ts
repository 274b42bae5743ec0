// The client half of the connectivity test, run inside the sender's netns (pod or node): for each
// target it opens a TCP connection to the probe server and reads who answered and what source it
// saw, and sends one ICMP echo with ping. Prints a JSON array of results on stdout.
// Usage: node lab/prober.ts '<json array of targets>'
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
import { PROBE_PORT, type ProbeAnswer } from './probe.ts';

export interface ProbeTarget {
  id: string;
  ip: string;
  port?: number;
  tcp?: boolean;
  icmp?: boolean;
  /** Probe `port` over UDP instead of TCP (a reply from the server is required). */
  udp?: boolean;
  timeoutMs?: number;
}

export interface ProbeOutcome {
  id: string;
  tcp?: { ok: boolean; answer?: ProbeAnswer; error?: string };
  udp?: { ok: boolean; answer?: ProbeAnswer; error?: string };
  icmp?: { ok: boolean; error?: string };
}

/** Sends one datagram and waits for the probe server's answer; retries once within the timeout. */
export function udpProbe(
  ip: string,
  port: number,
  timeoutMs = 1000,
): Promise<{ ok: boolean; answer?: ProbeAnswer; error?: string }> {
  return new Promise((resolve) => {
    const sock = createSocket(isIPv6(ip) ? 'udp6' : 'udp4');
    const send = () => sock.send('probe\n', port, ip, () => undefined);
    const resend = setTimeout(send, timeoutMs / 2);
    const timer = setTimeout(
      () => done({ ok: false, error: `no UDP answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    const done = (r: { ok: boolean; answer?: ProbeAnswer; error?: string }) => {
      clearTimeout(timer);
      clearTimeout(resend);
      sock.close();
      resolve(r);
    };
    sock.on('message', (msg: Buffer) => {
      try {
        done({ ok: true, answer: JSON.parse(msg.toString('utf8').trim()) as ProbeAnswer });
      } catch {
        done({ ok: false, error: `unexpected answer: ${msg.toString('utf8').slice(0, 100)}` });
      }
    });
    sock.on('error', (err: Error) => done({ ok: false, error: err.message }));
    send();
  });
}

export function tcpProbe(
  ip: string,
  port = PROBE_PORT,
  timeoutMs = 3000,
): Promise<{ ok: boolean; answer?: ProbeAnswer; error?: string }> {
  return new Promise((resolve) => {
    let buf = '';
    const sock = connect({ host: ip, port, timeout: timeoutMs });
    const done = (r: { ok: boolean; answer?: ProbeAnswer; error?: string }) => {
      sock.destroy();
      resolve(r);
    };
    sock.on('data', (d: Buffer) => (buf += d.toString('utf8')));
    sock.on('end', () => {
      try {
        done({ ok: true, answer: JSON.parse(buf.trim()) as ProbeAnswer });
      } catch {
        done({ ok: false, error: `unexpected answer: ${buf.slice(0, 100)}` });
      }
    });
    sock.on('timeout', () => done({ ok: false, error: `no answer within ${timeoutMs} ms` }));
    sock.on('error', (err: Error) => done({ ok: false, error: err.message }));
  });
}

export function icmpProbe(ip: string, timeoutS = 2): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const p = spawn('ping', ['-n', '-q', '-c', '1', '-W', String(timeoutS), ip], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e) => resolve({ ok: false, error: e.message }));
    p.on('close', (code) =>
      resolve(code === 0 ? { ok: true } : { ok: false, error: err.trim() || 'no echo reply' }),
    );
  });
}

export async function probeAll(targets: ProbeTarget[]): Promise<ProbeOutcome[]> {
  return Promise.all(
    targets.map(async (t) => {
      const out: ProbeOutcome = { id: t.id };
      const [tcp, udp, icmp] = await Promise.all([
        t.tcp === false || t.udp ? undefined : tcpProbe(t.ip, t.port ?? PROBE_PORT, t.timeoutMs),
        t.udp ? udpProbe(t.ip, t.port ?? PROBE_PORT, t.timeoutMs) : undefined,
        t.icmp === false ? undefined : icmpProbe(t.ip),
      ]);
      if (tcp) out.tcp = tcp;
      if (udp) out.udp = udp;
      if (icmp) out.icmp = icmp;
      return out;
    }),
  );
}

if (import.meta.main) {
  const targets = JSON.parse(process.argv[2] ?? '[]') as ProbeTarget[];
  process.stdout.write(`${JSON.stringify(await probeAll(targets))}\n`);
}
