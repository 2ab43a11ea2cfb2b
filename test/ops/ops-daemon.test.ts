// The ops HTTP endpoints of the real daemon process: a client that keeps a request half-sent
// (or a keep-alive connection open) does not hold the exit after SIGTERM, and a flood of
// scrapes is answered from the cached body instead of a render per request.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { listeningPort, startDaemonProcess, type DaemonProcess } from '../support/daemon-process.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const daemons: DaemonProcess[] = [];
after(async () => {
  for (const d of daemons) await d.kill();
});

async function start(env: Record<string, string>): Promise<{ daemon: DaemonProcess; metricsPort: number }> {
  const metricsPort = await freePort();
  // No message is judged here: the DNS server need not exist.
  const daemon = await startDaemonProcess({
    MILTER_SOCKET: 'inet:0@127.0.0.1',
    DNS_SERVERS: `127.0.0.1:${await freePort()}`,
    METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
    LOG_LEVEL: 'info',
    ...env,
  });
  daemons.push(daemon);
  return { daemon, metricsPort };
}

function open(port: number): Promise<{ sock: Socket; closed: Promise<void>; received: () => string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(port, '127.0.0.1', () => resolve({ sock, closed, received: () => Buffer.concat(chunks).toString() }));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.once('error', reject);
    sock.on('data', (d: Buffer) => chunks.push(d));
  });
}

describe('ops endpoints of the daemon', () => {
  test('SIGTERM with a half-sent /metrics request, a keep-alive client and an open milter connection: exit 0 by the drain deadline', async () => {
    const DEADLINE_MS = 1000;
    const { daemon, metricsPort } = await start({ SHUTDOWN_TIMEOUT_MS: String(DEADLINE_MS) });
    const milter = await open(await listeningPort(daemon));
    const keepAlive = await open(metricsPort);
    keepAlive.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const half = await open(metricsPort);
    // Without the blank line that ends the headers: the server waits for the rest.
    half.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    // The whole answer, with a length or chunked (`3\r\nok\n\r\n0\r\n\r\n`).
    await waitFor(() => keepAlive.received(), { timeoutMs: 2000, what: 'the whole /healthz answer', until: (r) => /\r\n\r\n(3\r\n)?ok\n(\r\n0\r\n\r\n)?$/.test(r) });
    assert.match(keepAlive.received(), /^HTTP\/1\.1 200/);

    daemon.proc.kill('SIGTERM');
    // The milter connection holds the drain to its deadline; nothing else may hold the exit.
    // The margin is below the request timeout (5 s), which would otherwise end the half request.
    const code = await daemon.waitExit(DEADLINE_MS + 3500);
    assert.equal(code, 0, `exit: ${code}\n${daemon.tail()}`);
    await Promise.all([half.closed, keepAlive.closed, milter.closed]);
    assert.equal(half.received(), '', 'the half-sent request got no answer');
    assert.ok(daemon.lines.some((l) => l.msg === 'Shutdown sos-milter'), daemon.tail());
  });

  test('a flood of scrapes costs one render per second, not one per request', async () => {
    const { daemon, metricsPort } = await start({});
    const scrape = async (): Promise<string> => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(res.status, 200);
      return res.text();
    };
    const SCRAPES = 300;
    const CONCURRENT = 10;
    const started = performance.now();
    const bodies: string[] = [];
    await Promise.all(
      Array.from({ length: CONCURRENT }, async () => {
        for (let i = 0; i < SCRAPES / CONCURRENT; i++) bodies.push(await scrape());
      }),
    );
    const elapsedMs = performance.now() - started;
    const renders = Math.max(...bodies.map((b) => Number(/^sos_milter_metrics_renders_total (\d+)$/m.exec(b)?.[1])));
    // However slow this machine is, the cache allows one render per started second of the flood
    // (and the one the first scrape found expired).
    const allowed = Math.ceil(elapsedMs / 1000) + 1;
    assert.ok(renders >= 1 && renders <= allowed, `${renders} renders for ${SCRAPES} scrapes in ${Math.round(elapsedMs)} ms (at most ${allowed})`);
    assert.ok(new Set(bodies).size <= allowed, `${new Set(bodies).size} distinct bodies`);
    console.log(`# ${SCRAPES} scrapes in ${Math.round(elapsedMs)} ms: ${renders} renders`);
    daemon.proc.kill('SIGTERM');
    assert.equal(await daemon.waitExit(15_000), 0, daemon.tail());
  });
});
