/**
 * Load client of the full-policy benchmark: one MTA-side milter connection that talks like
 * Postfix's milter8: OPTNEG first, then for each command a `D` packet with the macros the
 * milter asked for in its OPTNEG reply, commands the milter opted out of (SMFIP_NO*) left
 * out, and a reply awaited only where no SMFIP_NR_* was negotiated. Kept lean (no per-packet
 * decoding beyond the command byte) so the client is not what limits the figures.
 */
import { connect, type Socket } from 'node:net';
import { Cmd, PacketDecoder, ProtoFlag, Resp } from '../src/milter/index.js';
import { encodeCommand, type MacroPair, type MtaCommand } from '../test/support/milter-codec.js';

/** Postfix 3.x with milter_protocol=6 offers exactly this. */
const OFFER: MtaCommand = { type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff };

// Replies that end a command; everything else before them is a modification or progress.
const FINAL = new Set<number>([Resp.ACCEPT, Resp.CONTINUE, Resp.DISCARD, Resp.REJECT, Resp.TEMPFAIL, Resp.REPLYCODE, Resp.SKIP, Resp.SHUTDOWN]);

export interface MessageSpec {
  /** Envelope sender without angle brackets; '' for the null sender. */
  sender: string;
  recipient: string;
  /** Postfix's queue id for the message (macro `i`). */
  queueId: string;
}

export interface MessageOutcome {
  /** Command byte of the final reply to end of message (e.g. 'c'). */
  reply: string;
  /** Header additions received before it. */
  headersAdded: number;
  /** MAIL sent -> end of message answered, ms. */
  latencyMs: number;
}

interface Waiter {
  resolve: (final: number) => void;
}

/** Values Postfix would send for the macros a milter may ask for. */
function macroValue(name: string, msg: MessageSpec | undefined, stage: 'connect' | 'helo' | 'mail' | 'rcpt' | 'eom'): string | undefined {
  switch (name.replace(/^\{(.*)\}$/, '$1')) {
    case 'j':
    case 'daemon_name':
      return 'mx.bench.example';
    case 'v':
      return 'Postfix 3.7.11';
    case 'client_addr':
      return '192.0.2.10';
    case 'client_name':
      return 'client.bench.example';
    case '_':
      return 'client.bench.example [192.0.2.10]';
    case 'i':
      // Postfix assigns the queue id once the first recipient is accepted.
      return stage === 'rcpt' || stage === 'eom' ? msg?.queueId : undefined;
    case 'mail_addr':
      return msg?.sender;
    case 'mail_mailer':
      return 'smtp';
    case 'rcpt_addr':
      return msg?.recipient;
    case 'rcpt_host':
      return msg?.recipient.slice(msg.recipient.lastIndexOf('@') + 1);
    case 'rcpt_mailer':
      return 'smtp';
    default:
      return undefined;
  }
}

export class PolicyConnection {
  private readonly waiters: Waiter[] = [];
  private headersAdded = 0;
  private closed = false;
  private protocol = 0;
  private macrosByStage = new Map<number, string[]>();

  private constructor(private readonly sock: Socket) {
    const decoder = new PacketDecoder((cmd, payload) => {
      if (cmd === Resp.OPTNEG) {
        this.protocol = payload.readUInt32BE(8);
        for (let off = 12; off + 4 < payload.length; ) {
          const stage = payload.readUInt32BE(off);
          const end = payload.indexOf(0, off + 4);
          this.macrosByStage.set(stage, payload.toString('latin1', off + 4, end).split(' ').filter(Boolean));
          off = end + 1;
        }
        this.waiters.shift()?.resolve(cmd);
      } else if (cmd === Resp.ADDHEADER) {
        this.headersAdded++;
      } else if (FINAL.has(cmd)) {
        this.waiters.shift()?.resolve(cmd);
      }
    });
    sock.on('data', (c: Buffer) => decoder.push(c));
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w.resolve(-1);
    });
    sock.on('error', () => undefined);
  }

  static open(port: number): Promise<PolicyConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', noDelay: true });
      s.once('connect', () => resolve(new PolicyConnection(s)));
      s.once('error', reject);
    });
  }

  private wait(): Promise<number> {
    return new Promise((resolve) => this.waiters.push({ resolve }));
  }

  private async request(cmd: MtaCommand, expectsReply: boolean): Promise<number> {
    if (this.closed) throw new Error('milter closed the connection');
    const reply = expectsReply ? this.wait() : undefined;
    this.sock.write(encodeCommand(cmd));
    if (!reply) return 0;
    const r = await reply;
    if (r < 0) throw new Error(`milter closed the connection during ${cmd.type}`);
    return r;
  }

  private macros(stage: number, macroStage: number, msg: MessageSpec | undefined, name: 'connect' | 'helo' | 'mail' | 'rcpt' | 'eom'): void {
    const pairs: MacroPair[] = [];
    for (const n of this.macrosByStage.get(macroStage) ?? []) {
      const value = macroValue(n, msg, name);
      if (value !== undefined) pairs.push({ name: n, value });
    }
    this.sock.write(encodeCommand({ type: 'macro', stage, pairs }));
  }

  private has(flag: number): boolean {
    return (this.protocol & flag) !== 0;
  }

  /** OPTNEG, CONNECT and HELO, as Postfix does for a new SMTP session. */
  async start(): Promise<void> {
    await this.request(OFFER, true);
    if (!this.has(ProtoFlag.NOCONNECT)) {
      this.macros(Cmd.CONNECT, 0, undefined, 'connect');
      await this.request({ type: 'connect', hostname: 'client.bench.example', family: 'inet', port: 40000, address: '192.0.2.10' }, !this.has(ProtoFlag.NR_CONN));
    }
    if (!this.has(ProtoFlag.NOHELO)) {
      this.macros(Cmd.HELO, 1, undefined, 'helo');
      await this.request({ type: 'helo', name: 'client.bench.example' }, !this.has(ProtoFlag.NR_HELO));
    }
  }

  /** One transaction, MAIL to end of message, then ABORT as Postfix sends between messages. */
  async message(msg: MessageSpec): Promise<MessageOutcome> {
    const t0 = process.hrtime.bigint();
    this.headersAdded = 0;
    if (!this.has(ProtoFlag.NOMAIL)) {
      this.macros(Cmd.MAIL, 2, msg, 'mail');
      await this.request({ type: 'mail', args: [`<${msg.sender}>`, 'SIZE=2048'] }, !this.has(ProtoFlag.NR_MAIL));
    }
    if (!this.has(ProtoFlag.NORCPT)) {
      this.macros(Cmd.RCPT, 3, msg, 'rcpt');
      await this.request({ type: 'rcpt', args: [`<${msg.recipient}>`] }, !this.has(ProtoFlag.NR_RCPT));
    }
    if (!this.has(ProtoFlag.NODATA)) {
      this.macros(Cmd.DATA, 4, msg, 'eom');
      await this.request({ type: 'data' }, !this.has(ProtoFlag.NR_DATA));
    }
    if (!this.has(ProtoFlag.NOHDRS)) {
      for (const [name, value] of [['From', `<${msg.sender || 'postmaster@bench.example'}>`], ['To', `<${msg.recipient}>`], ['Subject', 'benchmark']]) {
        await this.request({ type: 'header', name: name!, value: value! }, !this.has(ProtoFlag.NR_HDR));
      }
    }
    if (!this.has(ProtoFlag.NOEOH)) await this.request({ type: 'eoh' }, !this.has(ProtoFlag.NR_EOH));
    if (!this.has(ProtoFlag.NOBODY)) await this.request({ type: 'body', chunk: Buffer.from('Hello.\r\n') }, !this.has(ProtoFlag.NR_BODY));
    this.macros(Cmd.BODYEOB, 5, msg, 'eom');
    const final = await this.request({ type: 'eob', data: Buffer.alloc(0) }, true);
    const latencyMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const outcome = { reply: String.fromCharCode(final), headersAdded: this.headersAdded, latencyMs };
    this.sock.write(encodeCommand({ type: 'abort' }));
    return outcome;
  }

  /** QUIT and wait for the milter to close. */
  end(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      this.sock.once('close', () => resolve());
      this.sock.write(encodeCommand({ type: 'quit' }));
    });
  }
}
