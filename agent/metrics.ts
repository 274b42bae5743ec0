// Prometheus metrics of the agent (CNI request counts and latency) on TRELLIS_METRICS_PORT,
// together with the default process metrics and IPAM's own metrics (same default registry).
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

export function serveMetrics(port: number): Server | undefined {
  if (!port) return undefined;
  collectDefaultMetrics();
  const server = createServer((req, res) => {
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
  server.listen(port);
  return server;
}
