// Run inside a sender pod's netns by the policy benchmark: starts a TCP connect to IP:PORT every
// INTERVAL ms (each a new connection, so each is judged by the policy as it is now), gives each up
// after TIMEOUT ms, and prints one line per attempt: "<start epoch ms> <1|0>". Runs until killed.
// Usage: node policy-probe-loop.ts IP PORT INTERVAL_MS TIMEOUT_MS
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';

const [ip, port, interval, timeout] = process.argv.slice(2);
const now = (): number => performance.timeOrigin + performance.now();

function attempt(): void {
  const start = now();
  const sock = connect({ host: ip!, port: Number(port) });
  let done = false;
  const finish = (ok: boolean): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    sock.destroy();
    process.stdout.write(`${start.toFixed(2)} ${ok ? 1 : 0}\n`);
  };
  const timer = setTimeout(() => finish(false), Number(timeout));
  sock.on('connect', () => finish(true));
  sock.on('error', () => finish(false));
}

setInterval(attempt, Number(interval));
