// In-process SMTP server that accepts every message. The test Postfix relays to it, so the
// tests can see what Postfix actually delivered (headers added by the milter, etc.).
import { createServer, type Server, type Socket } from 'node:net';

export interface DeliveredMessage {
  /** EHLO/HELO argument the relaying MTA announced. */
  helo: string;
  /** MAIL FROM address without angle brackets ('' for the null sender). */
  mailFrom: string;
  /** ESMTP parameters given on MAIL FROM, verbatim. */
  mailParams: string[];
  /** RCPT TO addresses without angle brackets, in order. */
  rcptTo: string[];
  /** Message content after dot-unstuffing, CRLF line ends, without the final ".". */
  raw: Buffer;
  /** `raw` decoded as UTF-8 for convenient assertions. */
  text: string;
}

/** Splits a byte stream into lines (CRLF or bare LF), keeping bytes intact. */
class LineReader {
  private buffer = Buffer.alloc(0);
  constructor(private readonly onLine: (line: Buffer) => void) {}
  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    let nl: number;
    while ((nl = this.buffer.indexOf(0x0a)) >= 0) {
      const end = nl > 0 && this.buffer[nl - 1] === 0x0d ? nl - 1 : nl;
      const line = this.buffer.subarray(0, end);
      this.buffer = this.buffer.subarray(nl + 1);
      this.onLine(line);
    }
  }
}

export class SmtpSinkTimeoutError extends Error {
  override readonly name = 'SmtpSinkTimeoutError';
  constructor(timeoutMs: number, received: number) {
    super(`no matching message within ${timeoutMs} ms (${received} message(s) received)`);
  }
}

export interface SmtpSink {
  readonly host: string;
  readonly port: number;
  readonly messages: readonly DeliveredMessage[];
  /** Resolves with the first message (already received or arriving later) matching `predicate`. */
  waitFor(predicate: (m: DeliveredMessage) => boolean, timeoutMs: number): Promise<DeliveredMessage>;
  /** Forgets received messages (sessions in progress are not affected). */
  clear(): void;
  close(): Promise<void>;
}

/** Angle brackets and ESMTP parameters of `MAIL FROM:<a> X=Y` style arguments. */
function parsePath(arg: string): { address: string; params: string[] } {
  const m = /^\s*<([^>]*)>\s*(.*)$/.exec(arg);
  if (m) return { address: m[1] ?? '', params: (m[2] ?? '').split(/\s+/).filter(Boolean) };
  const [address = '', ...params] = arg.trim().split(/\s+/);
  return { address, params };
}

export async function startSmtpSink(options: { hostname?: string; host?: string } = {}): Promise<SmtpSink> {
  const hostname = options.hostname ?? 'sink.test.invalid';
  const host = options.host ?? '127.0.0.1';
  const messages: DeliveredMessage[] = [];
  const waiters = new Set<{ predicate: (m: DeliveredMessage) => boolean; resolve: (m: DeliveredMessage) => void }>();
  const sockets = new Set<Socket>();

  function deliver(m: DeliveredMessage): void {
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.predicate(m)) {
        waiters.delete(w);
        w.resolve(m);
      }
    }
  }

  function session(socket: Socket): void {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    // Idle sessions must not keep the test process alive forever.
    socket.setTimeout(60_000, () => socket.destroy());

    let helo = '';
    let mailFrom: string | null = null;
    let mailParams: string[] = [];
    let rcptTo: string[] = [];
    let dataLines: Buffer[] | null = null;
    const reply = (text: string): void => {
      if (!socket.destroyed) socket.write(text + '\r\n');
    };
    const reset = (): void => {
      mailFrom = null;
      mailParams = [];
      rcptTo = [];
      dataLines = null;
    };

    const reader = new LineReader((line) => {
      if (dataLines) {
        if (line.length === 1 && line[0] === 0x2e) {
          const raw = Buffer.concat(dataLines.flatMap((l) => [l, Buffer.from('\r\n')]));
          deliver({ helo, mailFrom: mailFrom ?? '', mailParams, rcptTo, raw, text: raw.toString('utf8') });
          reset();
          reply('250 2.0.0 Ok: queued');
          return;
        }
        // RFC 5321 §4.5.2: a leading dot was doubled by the sender.
        dataLines.push(line[0] === 0x2e ? line.subarray(1) : line);
        return;
      }
      const text = line.toString('latin1');
      const verb = (/^\S+/.exec(text)?.[0] ?? '').toUpperCase();
      const arg = text.slice(verb.length).trim();
      switch (verb) {
        case 'EHLO':
          helo = arg;
          reset();
          reply(`250-${hostname}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES`);
          return;
        case 'HELO':
          helo = arg;
          reset();
          reply(`250 ${hostname}`);
          return;
        case 'MAIL': {
          const m = /^FROM:(.*)$/i.exec(arg);
          if (!m) return reply('501 5.5.4 Syntax: MAIL FROM:<address>');
          const p = parsePath(m[1] ?? '');
          reset();
          mailFrom = p.address;
          mailParams = p.params;
          return reply('250 2.1.0 Ok');
        }
        case 'RCPT': {
          const m = /^TO:(.*)$/i.exec(arg);
          if (!m) return reply('501 5.5.4 Syntax: RCPT TO:<address>');
          if (mailFrom === null) return reply('503 5.5.1 Error: need MAIL command');
          rcptTo.push(parsePath(m[1] ?? '').address);
          return reply('250 2.1.5 Ok');
        }
        case 'DATA':
          if (mailFrom === null || rcptTo.length === 0) return reply('503 5.5.1 Error: need RCPT command');
          dataLines = [];
          return reply('354 End data with <CR><LF>.<CR><LF>');
        case 'RSET':
          reset();
          return reply('250 2.0.0 Ok');
        case 'NOOP':
          return reply('250 2.0.0 Ok');
        case 'QUIT':
          reply('221 2.0.0 Bye');
          socket.end();
          return;
        default:
          return reply('502 5.5.2 Error: command not recognized');
      }
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    reply(`220 ${hostname} ESMTP test sink`);
  }

  const server: Server = createServer(session);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('SMTP sink has no TCP address');

  return {
    host,
    port: address.port,
    messages,
    waitFor(predicate, timeoutMs) {
      const found = messages.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = {
          predicate,
          resolve: (m: DeliveredMessage) => {
            clearTimeout(timer);
            resolve(m);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new SmtpSinkTimeoutError(timeoutMs, messages.length));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    clear() {
      messages.length = 0;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
