// Prometheus metrics of the agent (CNI request counts and latency) on TRELLIS_METRICS_ADDRESS:PORT,
// together with the default process metrics and IPAM's own metrics (same default registry), and
// the liveness and readiness endpoints the DaemonSet's probes call.
import { createServer, type Server } from 'node:http';
import { Counter, Histogram, collectDefaultMetrics, register } from 'prom-client';

export const cniRequests = new Counter({
  name: 'trellis_agent_cni_requests_total',
  help: 'CNI requests served, by command and result',
  labelNames: ['command', 'result'] as const,
});

export const cniLatency = new Histogram({
  name: 'trellis_agent_cni_request_seconds',
  help: 'Agent-side CNI request latency',
  labelNames: ['command'] as const,
  buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
});

let ready = false;

/** Called once the agent serves CNI requests and its conflist is installed: /readyz answers 200 from then on. */
export function markReady(): void {
  ready = true;
}

/**
 * Serves /metrics, /healthz (the event loop answers: liveness) and /readyz (the agent serves CNI:
 * readiness) on the node's address or loopback, never on every interface: the agent runs in the
 * host network namespace, where 0.0.0.0 would expose it on every network the node is attached to.
 */
export function serveMetrics(port: number, host: string): Server | undefined {
  if (!port) return undefined;
  collectDefaultMetrics();
  const server = createServer((req, res) => {
    if (req.url === '/healthz' || req.url === '/readyz') {
      const ok = req.url === '/healthz' || ready;
      res.statusCode = ok ? 200 : 503;
      res.end(ok ? 'ok' : 'not serving CNI yet');
      return;
    }
    if (req.url !== '/metrics') {
      res.statusCode = 404;
      res.end();
      return;
    }
    void register.metrics().then((text) => {
      res.setHeader('content-type', register.contentType);
      res.end(text);
    });
  });
  server.on('error', (err: unknown) => {
    // a taken port must not take CNI down with it; the probe failing says so
    process.stderr.write(`trellis-agent: metrics on ${host}:${port}: ${String(err)}\n`);
  });
  server.listen(port, host);
  return server;
}
