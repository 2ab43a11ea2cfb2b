// A hostile milter peer's building blocks: a bare loopback socket, its close, and a trickle of
// bytes (one every so often), shared by the library's bound tests and the daemon's.
import { connect, type Socket } from 'node:net';

export function rawConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

export const closed = (s: Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));

/** Writes `bytes` one byte every `everyMs` while the socket is open; `sent()` says how many went. */
export function trickle(s: Socket, bytes: Buffer, everyMs: number): { sent(): number; stop(): void } {
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < bytes.length && !s.destroyed) s.write(bytes.subarray(sent, ++sent));
  }, everyMs);
  return { sent: () => sent, stop: () => clearInterval(timer) };
}
