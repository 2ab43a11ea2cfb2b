import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';

/**
 * A process that listens on `path` with a backlog of 1 and then never accepts (its event loop
 * is blocked): once two connects are pending, Linux answers the next one with EAGAIN.
 */
export async function stuckListener(path: string): Promise<{ child: ChildProcess; held: Socket[] }> {
  const script = `require('net').createServer().listen({ path: ${JSON.stringify(path)}, backlog: 1 }, () => {
    process.stdout.write('ready\\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30000);
  })`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.stdout!.once('data', resolve);
    child.once('exit', () => reject(new Error('the listener exited')));
  });
  const held: Socket[] = [];
  // Fill the backlog: connects are accepted by the kernel until it is full.
  for (let i = 0; i < 8; i++) {
    const c = connect(path);
    const r = await new Promise<string>((resolve) => {
      c.once('connect', () => resolve('connect'));
      c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    if (r !== 'connect') break;
    held.push(c);
  }
  return { child, held };
}
