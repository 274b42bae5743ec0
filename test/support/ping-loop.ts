// A ping loop run from inside a netns for the length of a fault (agent kill, restart, outage), so
// a test can ask whether running traffic lost any packet. Shared by the lab and bgp e2e files.
import { spawn } from 'node:child_process';

export interface PingLoop {
  /** Echo replies seen so far. */
  replies(): number;
  /** Stops the loop and reports the last answered sequence number and every earlier one unanswered. */
  stop(): Promise<{ last: number; missing: number[] }>;
}

export function startPingLoop(netns: string, target: string, intervalSeconds: number): PingLoop {
  const ping = spawn('ip', ['netns', 'exec', netns, 'ping', '-n', '-i', String(intervalSeconds), target], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  ping.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return {
    replies: () => out.split('\n').filter((l) => l.includes('bytes from')).length,
    async stop() {
      ping.kill('SIGINT');
      await new Promise((r) => ping.once('close', r));
      const seqs = new Set([...out.matchAll(/bytes from [^\n]*icmp_seq=(\d+)/g)].map((x) => Number(x[1])));
      // a request still in flight when the loop stopped is not a loss: only gaps before the last reply count
      const last = Math.max(0, ...seqs);
      const missing = Array.from({ length: last }, (_, i) => i + 1).filter((n) => !seqs.has(n));
      return { last, missing };
    },
  };
}
