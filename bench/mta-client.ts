/**
 * The benchmark's MTA side: milter connections that talk like Postfix's milter8 — OPTNEG with
 * Postfix's offer, then per command a `D` packet with the macros the milter asked for (values
 * Postfix would send), commands the milter opted out of (SMFIP_NO*) left out, a reply awaited
 * only where no SMFIP_NR_* was negotiated, ABORT after each message, QUIT at the end.
 *
 * Lean on purpose, as it shares two cores with the server it measures: the packets of a
 * message are prebuilt per sender and only the queue id is patched in, replies are split by
 * command byte only, and there are no per-request timers (a phase watchdog destroys the sockets
 * of a phase that overruns, which fails its waiters).
 */
import { connect, type Socket } from 'node:net';
import {
  Cmd,
  connectPacket,
  FINAL_REPLIES,
  Framer,
  headerPacket,
  heloPacket,
  MacroStage,
  macroPacket,
  mailPacket,
  optnegPacket,
  parseOptnegReply,
  POSTFIX_OFFER,
  Proto,
  rcptPacket,
  Resp,
  type OptnegReply,
} from './wire.js';

export interface MessageSpec {
  /** Envelope sender without angle brackets; '' for the null sender. */
  sender: string;
  recipient: string;
}

export interface MessageOutcome {
  /** Command byte of the final reply to end of message. */
  final: number;
  /** Header additions received before it. */
  headersAdded: number;
  /** Envelope sender changes (CHGFROM) received before it. */
  sendersChanged: number;
  /** MAIL sent -> end of message answered, ms. */
  latencyMs: number;
}

const CLIENT = { name: 'client.bench.example', addr: '192.0.2.10', port: 40000 };
const QUEUE_ID_PLACEHOLDER = 'QQQQQQQQQQ';

/** Values Postfix would send for the macros a milter may ask for; undefined: not sent. */
function macroValue(name: string, msg: MessageSpec | undefined, stage: number): string | undefined {
  switch (name.replace(/^\{(.*)\}$/, '$1')) {
    case 'j':
    case 'daemon_name':
      return 'mx.bench.example';
    case 'v':
      return 'Postfix 3.7.11';
    case 'client_addr':
      return CLIENT.addr;
    case 'client_name':
      return CLIENT.name;
    case '_':
      return `${CLIENT.name} [${CLIENT.addr}]`;
    case 'i':
      // Postfix assigns the queue id once the first recipient is accepted.
      return stage === MacroStage.ENVRCPT || stage === MacroStage.EOM ? QUEUE_ID_PLACEHOLDER : undefined;
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

function macros(reply: OptnegReply, stage: number, stageCmd: number, msg: MessageSpec | undefined): Buffer {
  const pairs: [string, string][] = [];
  for (const name of reply.macros.get(stage) ?? []) {
    const value = macroValue(name, msg, stage);
    if (value !== undefined) pairs.push([name, value]);
  }
  return macroPacket(stageCmd, pairs);
}

/** One message's writes, prebuilt, with the offsets where the queue id goes. */
interface MessageTemplate {
  writes: { bytes: Buffer; awaitReply: boolean; queueIdAt: number[] }[];
}

/** What a negotiated OPTNEG reply means for the traffic: built once, shared by all connections. */
export class TrafficPlan {
  readonly reply: OptnegReply;
  private readonly templates = new Map<string, MessageTemplate>();
  readonly sessionStart: { bytes: Buffer; awaitReply: boolean }[] = [];

  /**
   * `fromHeader`: a milter that negotiated headers (DMARC_CHECK=on) is sent one header per
   * message, `From: <value>`, as Postfix would send it (the header stage only: no DATA, EOH or body).
   */
  constructor(
    readonly replyPayload: Buffer,
    private readonly fromHeader?: string,
  ) {
    const r = (this.reply = parseOptnegReply(replyPayload));
    const has = (bit: number): boolean => (r.protocol & bit) !== 0;
    if (!has(Proto.NOCONNECT)) {
      const bytes = Buffer.concat([macros(r, MacroStage.CONNECT, Cmd.CONNECT, undefined), connectPacket(CLIENT.name, CLIENT.addr, CLIENT.port)]);
      this.sessionStart.push({ bytes, awaitReply: !has(Proto.NR_CONN) });
    }
    if (!has(Proto.NOHELO)) {
      const bytes = Buffer.concat([macros(r, MacroStage.HELO, Cmd.HELO, undefined), heloPacket(CLIENT.name)]);
      this.sessionStart.push({ bytes, awaitReply: !has(Proto.NR_HELO) });
    }
    // The harness's traffic has no DATA, headers or body: a milter that wants them is not like-for-like.
    for (const [bit, what] of [[Proto.NODATA, 'DATA'], [Proto.NOHDRS, 'headers'], [Proto.NOEOH, 'end of headers'], [Proto.NOBODY, 'body']] as const) {
      if (bit === Proto.NOHDRS && fromHeader !== undefined) continue;
      if (!has(bit)) throw new Error(`the milter negotiated ${what} (protocol 0x${r.protocol.toString(16)}); the bench client sends none`);
    }
  }

  template(msg: MessageSpec): MessageTemplate {
    const key = `${msg.sender}\n${msg.recipient}`;
    let t = this.templates.get(key);
    if (t) return t;
    const r = this.reply;
    const has = (bit: number): boolean => (r.protocol & bit) !== 0;
    const writes: { bytes: Buffer; awaitReply: boolean }[] = [];
    if (!has(Proto.NOMAIL)) {
      writes.push({ bytes: Buffer.concat([macros(r, MacroStage.ENVFROM, Cmd.MAIL, msg), mailPacket([`<${msg.sender}>`, 'SIZE=2048'])]), awaitReply: !has(Proto.NR_MAIL) });
    }
    if (!has(Proto.NORCPT)) {
      writes.push({ bytes: Buffer.concat([macros(r, MacroStage.ENVRCPT, Cmd.RCPT, msg), rcptPacket([`<${msg.recipient}>`])]), awaitReply: !has(Proto.NR_RCPT) });
    }
    if (!has(Proto.NOHDRS) && this.fromHeader !== undefined) writes.push({ bytes: headerPacket('From', ` ${this.fromHeader}`), awaitReply: !has(Proto.NR_HDR) });
    writes.push({ bytes: Buffer.concat([macros(r, MacroStage.EOM, Cmd.BODYEOB, msg), Buffer.from([0, 0, 0, 1, Cmd.BODYEOB])]), awaitReply: true });
    t = {
      writes: writes.map((w) => {
        const at: number[] = [];
        for (let i = w.bytes.indexOf(QUEUE_ID_PLACEHOLDER); i >= 0; i = w.bytes.indexOf(QUEUE_ID_PLACEHOLDER, i + 1)) at.push(i);
        return { ...w, queueIdAt: at };
      }),
    };
    this.templates.set(key, t);
    return t;
  }
}

const OFFER = optnegPacket(POSTFIX_OFFER);
const ABORT = Buffer.from([0, 0, 0, 1, Cmd.ABORT]);
const QUIT = Buffer.from([0, 0, 0, 1, Cmd.QUIT]);

let queueCounter = 0x10000000;

/** Connections a phase opened and not yet closed, so a watchdog can destroy them. */
export type ConnectionSet = Set<MtaConnection>;

export class MtaConnection {
  private readonly waiters: ((final: number) => void)[] = [];
  private headersAdded = 0;
  private sendersChanged = 0;
  private closed = false;
  private readonly closedPromise: Promise<void>;
  private optnegPayload: Buffer | undefined;

  private constructor(
    private readonly sock: Socket,
    registry: ConnectionSet | undefined,
  ) {
    registry?.add(this);
    const framer = new Framer((cmd, payload) => {
      if (cmd === Resp.OPTNEG) {
        this.optnegPayload = Buffer.from(payload);
        this.waiters.shift()?.(cmd);
      } else if (cmd === Resp.ADDHEADER) this.headersAdded++;
      else if (cmd === Resp.CHGFROM) this.sendersChanged++;
      else if (FINAL_REPLIES.has(cmd)) this.waiters.shift()?.(cmd);
    });
    sock.on('data', (c: Buffer) => {
      try {
        framer.push(c);
      } catch {
        sock.destroy();
      }
    });
    this.closedPromise = new Promise((resolve) =>
      sock.on('close', () => {
        this.closed = true;
        registry?.delete(this);
        for (const w of this.waiters.splice(0)) w(-1);
        resolve();
      }),
    );
    sock.on('error', () => undefined);
  }

  static open(port: number, registry?: ConnectionSet): Promise<MtaConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', noDelay: true });
      s.once('connect', () => resolve(new MtaConnection(s, registry)));
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private send(bytes: Buffer, awaitReply: boolean, what: string): Promise<number> | undefined {
    if (this.closed) throw new Error(`milter closed the connection before ${what}`);
    const reply = awaitReply ? new Promise<number>((resolve) => this.waiters.push(resolve)) : undefined;
    this.sock.write(bytes);
    return reply;
  }

  private async expect(reply: Promise<number> | undefined, what: string): Promise<number> {
    const r = reply ? await reply : 0;
    if (r < 0) throw new Error(`milter closed the connection during ${what}`);
    return r;
  }

  /** Sends Postfix's offer and returns the milter's OPTNEG reply payload. */
  async negotiate(): Promise<Buffer> {
    await this.expect(this.send(OFFER, true, 'OPTNEG'), 'OPTNEG');
    if (!this.optnegPayload) throw new Error('no OPTNEG reply');
    return this.optnegPayload;
  }

  /** OPTNEG, CONNECT and HELO, as Postfix starts an SMTP session; the plan must fit the reply. */
  async start(plan: TrafficPlan): Promise<void> {
    const payload = await this.negotiate();
    if (!payload.equals(plan.replyPayload)) throw new Error('the milter negotiated differently on this connection');
    for (const w of plan.sessionStart) {
      const reply = this.send(w.bytes, w.awaitReply, 'session start');
      if (reply) await this.expect(reply, 'session start');
    }
  }

  /** One transaction, MAIL to end of message, then ABORT as Postfix sends between messages. */
  async message(plan: TrafficPlan, msg: MessageSpec): Promise<MessageOutcome> {
    const t = plan.template(msg);
    const queueId = (queueCounter++).toString(16).toUpperCase().padStart(QUEUE_ID_PLACEHOLDER.length, '0');
    const t0 = performance.now();
    this.headersAdded = 0;
    this.sendersChanged = 0;
    let final = 0;
    for (const w of t.writes) {
      let bytes = w.bytes;
      if (w.queueIdAt.length > 0) {
        bytes = Buffer.from(bytes);
        for (const at of w.queueIdAt) bytes.write(queueId, at, 'latin1');
      }
      const reply = this.send(bytes, w.awaitReply, 'a message');
      if (reply) final = await this.expect(reply, 'a message');
    }
    const latencyMs = performance.now() - t0;
    const outcome = { final, headersAdded: this.headersAdded, sendersChanged: this.sendersChanged, latencyMs };
    this.sock.write(ABORT);
    return outcome;
  }

  /** QUIT, then wait for the milter to close. */
  quit(): Promise<void> {
    if (!this.closed) this.sock.write(QUIT);
    return this.closedPromise;
  }

  destroy(): void {
    this.sock.destroy();
  }
}
