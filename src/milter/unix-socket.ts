/** Preparing and cleaning up the file of a UNIX-domain listening socket. */
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { SocketBindError } from './errors.js';

/**
 * What a connect to an existing socket file tells: `live` (it was accepted, or it hung: a
 * listener that is slow to accept is still a listener), `stale` (refused: nobody listens; or the
 * file vanished meanwhile), or any other error, whose code is given: EAGAIN is what a live
 * listener with a full backlog answers, EACCES hides whether anyone listens. Only `stale` allows
 * removing the file.
 */
export type SocketProbe = { state: 'live' } | { state: 'stale' } | { state: 'unknown'; code: string; message: string };

/** Codes that prove nobody listens on the file (or that it is already gone). */
const STALE_CODES = new Set(['ECONNREFUSED', 'ENOENT']);

export function probeUnixSocket(path: string, timeoutMs = 1000): Promise<SocketProbe> {
  return new Promise((resolve) => {
    const c = connect(path);
    const done = (probe: SocketProbe): void => {
      clearTimeout(timer);
      c.destroy();
      resolve(probe);
    };
    // A live listener that does not accept in time is still live: do not steal its path.
    const timer = setTimeout(() => done({ state: 'live' }), timeoutMs);
    c.once('connect', () => done({ state: 'live' }));
    c.once('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? 'UNKNOWN';
      done(STALE_CODES.has(code) ? { state: 'stale' } : { state: 'unknown', code, message: err.message });
    });
  });
}

export interface PrepareOptions {
  /** The probe (tests replace it to give an error the kernel rarely gives). */
  probe?: (path: string) => Promise<SocketProbe>;
}

/** Creates the parent folder and removes a stale socket file; refuses anything else at the path. */
export async function prepareUnixSocketPath(path: string, options: PrepareOptions = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) {
    throw new SocketBindError('NOT_A_SOCKET', `${path} exists and is not a socket; refusing to remove it`);
  }
  const probe = await (options.probe ?? probeUnixSocket)(path);
  if (probe.state === 'live') {
    throw new SocketBindError('SOCKET_IN_USE', `another process is listening on ${path}`);
  }
  if (probe.state === 'unknown') {
    const why = probe.code === 'EAGAIN' ? "its backlog is full: a live process is listening on it but not accepting" : probe.message;
    throw new SocketBindError(
      'SOCKET_PROBE_FAILED',
      `${path} may be in use: connecting to it failed with ${probe.code} (${why}), not ECONNREFUSED, so it is not known to be stale; refusing to remove it. Stop the process that listens on it, or remove the file if none does`,
    );
  }
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Removes our socket file unless something else has replaced it meanwhile. */
export async function removeUnixSocket(path: string, ino: number | undefined): Promise<void> {
  try {
    const st = await lstat(path);
    if (!st.isSocket() || (ino !== undefined && st.ino !== ino)) return;
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
