// The client half of the connectivity test, run inside the sender's netns (pod or node): for each
// target it opens a TCP connection to the probe server and reads who answered and what source it
// saw, and sends one ICMP echo with ping. Prints a JSON array of results on stdout.
// Usage: node lab/prober.ts '<json array of targets>'
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { PROBE_PORT, type ProbeAnswer } from './probe.ts';

export interface ProbeTarget {
  id: string;
  ip: string;
  port?: number;
  tcp?: boolean;
  icmp?: boolean;
}

export interface ProbeOutcome {
  id: string;
  tcp?: { ok: boolean; answer?: ProbeAnswer; error?: string };
  icmp?: { ok: boolean; error?: string };
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
      const [tcp, icmp] = await Promise.all([
        t.tcp === false ? undefined : tcpProbe(t.ip, t.port ?? PROBE_PORT),
        t.icmp === false ? undefined : icmpProbe(t.ip),
      ]);
      if (tcp) out.tcp = tcp;
      if (icmp) out.icmp = icmp;
      return out;
    }),
  );
}

if (import.meta.main) {
  const targets = JSON.parse(process.argv[2] ?? '[]') as ProbeTarget[];
  process.stdout.write(`${JSON.stringify(await probeAll(targets))}\n`);
}
