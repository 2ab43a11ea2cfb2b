import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';

/** The Prometheus exposition: its content type and a (cached) body. */
export interface MetricsSource {
  readonly contentType: string;
  scrape(): Promise<string>;
}

export interface OpsEndpoints {
  metrics?: MetricsSource | undefined;
  /** Liveness: the process serves. */
  live: () => boolean;
  /** Readiness: the milter socket listens and start-up finished. */
  ready: () => boolean;
}

export interface OpsServerOptions {
  /** A request must be complete (headers and body) this long after its first byte (default 5 s). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this long (default 2 s). */
  keepAliveTimeoutMs?: number;
  /** Concurrent connections; the kernel's next ones are dropped (default 32). */
  maxConnections?: number;
}

/** The running ops server: its node:http Server and a close that does not wait for the clients. */
export interface OpsServer {
  readonly server: Server;
  /** Stops listening and destroys every open connection, a half-sent request included. */
  close(): Promise<void>;
}

const DEFAULTS = { requestTimeoutMs: 5000, keepAliveTimeoutMs: 2000, maxConnections: 32 } as const;

/**
 * Serves /metrics (Prometheus), /healthz and /readyz for Kubernetes probes. Bounded so that a
 * client cannot hold the daemon: requests must arrive whole within requestTimeoutMs, idle
 * keep-alive connections close soon, the connection count is capped, and close() cuts every
 * connection instead of waiting for clients to leave.
 */
export function startOpsServer(host: string | undefined, port: number, endpoints: OpsEndpoints, options: OpsServerOptions = {}): Promise<OpsServer> {
  const o = { ...DEFAULTS, ...options };
  const metrics = endpoints.metrics;
  const server = createServer(
    {
      requestTimeout: o.requestTimeoutMs,
      headersTimeout: o.requestTimeoutMs,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      // How often Node checks the two request timeouts (default 30 s, which would make them 30 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(o.requestTimeoutMs / 4))),
    },
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics' && metrics) {
        metrics.scrape().then(
          (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body),
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
    },
  );
  server.maxConnections = o.maxConnections;
  // A connection that sends nothing at all (not even a first byte) is no request yet: bounded here.
  server.timeout = o.requestTimeoutMs;
  const sockets = new Set<Socket>();
  server.on('connection', (sock: Socket) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
  });
  let closing: Promise<void> | undefined;
  const ops: OpsServer = {
    server,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive and half-sent requests alike: nobody is owed an answer at shutdown.
        for (const sock of sockets) sock.destroy();
        sockets.clear();
      });
      return closing;
    },
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(ops);
    });
  });
}
