import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface OpsEndpoints {
  registry?: Registry;
  /** Liveness: the process serves. */
  live: () => boolean;
  /** Readiness: the milter socket listens and start-up finished. */
  ready: () => boolean;
}

/** Serves /metrics (Prometheus), /healthz and /readyz for Kubernetes probes. */
export function startOpsServer(host: string | undefined, port: number, endpoints: OpsEndpoints): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics' && endpoints.registry) {
      const registry = endpoints.registry;
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
      );
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      const ok = path === '/healthz' ? endpoints.live() : endpoints.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
