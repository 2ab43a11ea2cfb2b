// Minimal SMTP client for tests: one command at a time, every reply returned verbatim so
// tests can assert on exact codes and texts (e.g. "550 5.7.1 Command rejected").
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';

export interface SmtpReply {
  /** Three-digit reply code of the last line. */
  code: number;
  /** Each reply line as received, without CRLF (e.g. "550-5.7.1 first"). */
  lines: string[];
  /** All lines joined with CRLF, exactly as sent by the server minus the final CRLF. */
  text: string;
  /** Text after "NNN " / "NNN-" of each line, joined with "\n". */
  message: string;
}

export class SmtpTimeoutError extends Error {
  override readonly name = 'SmtpTimeoutError';
  constructor(what: string, timeoutMs: number) {
    super(`SMTP ${what}: no reply within ${timeoutMs} ms`);
  }
}

export class SmtpConnectionClosedError extends Error {
  override readonly name = 'SmtpConnectionClosedError';
  constructor(what: string, partial: string[]) {
    super(`SMTP ${what}: connection closed` + (partial.length ? ` after partial reply ${JSON.stringify(partial)}` : ''));
  }
}

export class SmtpProtocolError extends Error {
  override readonly name = 'SmtpProtocolError';
}

export interface SmtpClientOptions {
  host?: string;
  /** Source address, e.g. another 127.0.0.0/8 address to look like a different client. */
  localAddress?: string;
  /** Bound for connecting and for every single reply. */
  timeoutMs?: number;
}

export interface SendMailResult {
  mail: SmtpReply;
  rcpt: SmtpReply[];
  /** Reply to DATA if it was refused, else the reply after the final ".". Absent if no RCPT was accepted. */
  data?: SmtpReply;
}

/** Dot-stuffs and CRLF-normalizes message content; the result ends with CRLF "." CRLF. */
export function encodeData(content: string | Buffer): Buffer {
  const text = Buffer.isBuffer(content) ? content.toString('latin1') : Buffer.from(content, 'utf8').toString('latin1');
  const lines = text.replace(/\r?\n/g, '\n').split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const stuffed = lines.map((l) => (l.startsWith('.') ? '.' + l : l));
  return Buffer.from(stuffed.map((l) => l + '\r\n').join('') + '.\r\n', 'latin1');
}

export class SmtpClient {
  private buffer = '';
  private pending: string[] = [];
  private waiter: ((err?: Error) => void) | null = null;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
    /** The server's greeting (220 or a refusal). */
    public greeting: SmtpReply = { code: 0, lines: [], text: '', message: '' },
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('latin1');
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        this.pending.push(this.buffer.slice(0, nl).replace(/\r$/, ''));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async connect(port: number, options: SmtpClientOptions = {}): Promise<SmtpClient> {
    const timeoutMs = options.timeoutMs ?? 15_000;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ port, host: options.host ?? '127.0.0.1', localAddress: options.localAddress });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new SmtpTimeoutError('connect', timeoutMs));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeListener('error', onError);
        resolve(s);
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      s.once('error', onError);
    });
    const client = new SmtpClient(socket, timeoutMs);
    try {
      client.greeting = await client.readReply('greeting');
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return client;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Reads one complete (possibly multi-line) reply. */
  async readReply(what = 'reply'): Promise<SmtpReply> {
    const lines: string[] = [];
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      while (this.pending.length > 0) {
        const line = this.pending.shift() as string;
        if (!/^\d{3}([ -]|$)/.test(line)) throw new SmtpProtocolError(`SMTP ${what}: malformed reply line ${JSON.stringify(line)}`);
        lines.push(line);
        if (line.charAt(3) !== '-') {
          return {
            code: Number(line.slice(0, 3)),
            lines,
            text: lines.join('\r\n'),
            message: lines.map((l) => l.slice(4)).join('\n'),
          };
        }
      }
      if (this.closed) throw new SmtpConnectionClosedError(what, lines);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new SmtpTimeoutError(what, this.timeoutMs);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.waiter = null;
          resolve();
        }, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Sends one command line (CRLF appended) and returns its reply. */
  async command(line: string): Promise<SmtpReply> {
    if (/[\r\n]/.test(line)) throw new SmtpProtocolError('SMTP command must be a single line');
    if (this.closed) throw new SmtpConnectionClosedError(line.split(' ')[0] ?? line, []);
    this.socket.write(line + '\r\n', 'latin1');
    return this.readReply(line.split(' ')[0]);
  }

  ehlo(name = 'client.test.invalid'): Promise<SmtpReply> {
    return this.command(`EHLO ${name}`);
  }

  helo(name = 'client.test.invalid'): Promise<SmtpReply> {
    return this.command(`HELO ${name}`);
  }

  /** `from` is the bare address ('' for the null sender); params are appended verbatim. */
  mail(from: string, params: string[] = []): Promise<SmtpReply> {
    return this.command([`MAIL FROM:<${from}>`, ...params].join(' '));
  }

  rcpt(to: string, params: string[] = []): Promise<SmtpReply> {
    return this.command([`RCPT TO:<${to}>`, ...params].join(' '));
  }

  /** DATA + content: returns the DATA reply if it is not 354, else the reply to the final ".". */
  async data(content: string | Buffer): Promise<SmtpReply> {
    const go = await this.command('DATA');
    if (go.code !== 354) return go;
    this.socket.write(encodeData(content));
    return this.readReply('end of data');
  }

  rset(): Promise<SmtpReply> {
    return this.command('RSET');
  }

  noop(): Promise<SmtpReply> {
    return this.command('NOOP');
  }

  /** One transaction; DATA is only attempted when at least one recipient was accepted. */
  async sendMail(from: string, to: string[], content: string | Buffer): Promise<SendMailResult> {
    const mail = await this.mail(from);
    const rcpt: SmtpReply[] = [];
    if (mail.code !== 250) return { mail, rcpt };
    for (const r of to) rcpt.push(await this.rcpt(r));
    if (!rcpt.some((r) => r.code === 250 || r.code === 251)) return { mail, rcpt };
    return { mail, rcpt, data: await this.data(content) };
  }

  /** Sends QUIT (if still connected) and closes; never throws. */
  async quit(): Promise<SmtpReply | undefined> {
    let reply: SmtpReply | undefined;
    try {
      if (!this.closed) reply = await this.command('QUIT');
    } catch {
      // The server may hang up first (e.g. after a 421); closing is all that matters.
    }
    this.close();
    return reply;
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/** A session ready for MAIL: connected, greeted with 220, EHLO `ehloName` answered 250 (asserted). */
export async function openSmtpSession(port: number, ehloName: string, options: SmtpClientOptions = {}): Promise<SmtpClient> {
  const c = await SmtpClient.connect(port, options);
  assert.equal(c.greeting.code, 220, c.greeting.text);
  assert.equal((await c.ehlo(ehloName)).code, 250);
  return c;
}
