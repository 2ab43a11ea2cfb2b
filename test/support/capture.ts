import { Writable } from 'node:stream';

/** Runs a CLI command function with an output stream that collects what it writes. */
export async function captureOutput(run: (out: Writable) => Promise<number>): Promise<{ code: number; text: string }> {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString('utf8');
      cb();
    },
  });
  const code = await run(out);
  return { code, text };
}
