/** Preparing and cleaning up the file of a UNIX-domain listening socket. */
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { SocketBindError } from './errors.js';

/** Whether some process accepts connections on the socket file (a stale file refuses them). */
function isListening(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    const done = (live: boolean): void => {
      clearTimeout(timer);
      c.destroy();
      resolve(live);
    };
    // A live listener that does not accept in time is still live: do not steal its path.
    const timer = setTimeout(() => done(true), timeoutMs);
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
  });
}

/** Creates the parent folder and removes a stale socket file; refuses anything else at the path. */
export async function prepareUnixSocketPath(path: string): Promise<void> {
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
  if (await isListening(path)) {
    throw new SocketBindError('SOCKET_IN_USE', `another process is listening on ${path}`);
  }
  await unlink(path);
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
