/**
 * A small milter protocol client that speaks like Postfix's milter8.c: OPTNEG first, a `D`
 * packet before each command, one reply awaited per reply-expecting command (honouring the
 * negotiated SMFIP_NR_* bits), modifications collected at end of message. Reusable by unit,
 * integration and hostile-input tests.
 */
import { connect, type Socket } from 'node:net';
import { Cmd, PacketDecoder, ProtoFlag, type BoundAddress, type MilterResponse } from '../../src/milter/index.js';
import { decodeResponse, encodeCommand, isFinalResponse, type MtaCommand } from './milter-codec.js';
import { sleep } from './wait.js';

export type ClientTarget = { port: number; host?: string } | { path: string } | BoundAddress;

export interface Reply {
  /** Modification and progress packets received before the final reply. */
  modifications: MilterResponse[];
  /** The final reply, or undefined when the command expects none (NR_* negotiated). */
  final: MilterResponse | undefined;
}

export type OptnegReply = Extract<MilterResponse, { type: 'optneg' }>;

/** Postfix 3.x with milter_protocol=6 offers exactly this. */
export const POSTFIX_OFFER = { version: 6, actions: 0x1ff, protocol: 0x1fffff } as const;

const NR_FOR: Partial<Record<MtaCommand['type'], number>> = {
  connect: ProtoFlag.NR_CONN,
  helo: ProtoFlag.NR_HELO,
  mail: ProtoFlag.NR_MAIL,
  rcpt: ProtoFlag.NR_RCPT,
  data: ProtoFlag.NR_DATA,
  unknown: ProtoFlag.NR_UNKN,
  eoh: ProtoFlag.NR_EOH,
  body: ProtoFlag.NR_BODY,
  header: ProtoFlag.NR_HDR,
};

const STAGE_BYTE: Partial<Record<MtaCommand['type'], number>> = {
  connect: Cmd.CONNECT,
  helo: Cmd.HELO,
  mail: Cmd.MAIL,
  rcpt: Cmd.RCPT,
  data: Cmd.DATA,
  header: Cmd.HEADER,
  eoh: Cmd.EOH,
  body: Cmd.BODY,
  eob: Cmd.BODYEOB,
  unknown: Cmd.UNKNOWN,
};

export type MacroInput = Record<string, string> | [string, string][];

export class MilterTestClient {
  private readonly inbox: MilterResponse[] = [];
  private waiter: (() => void) | undefined;
  private error: Error | undefined;
  private isClosed = false;
  private readonly closedPromise: Promise<void>;
  /** Protocol flags of the last OPTNEG reply. */
  protocol = 0;
  actions = 0;
  version = 0;

  private constructor(
    readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    const decoder = new PacketDecoder((cmd, payload) => {
      try {
        this.inbox.push(decodeResponse(cmd, payload));
      } catch (err) {
        this.error = err as Error;
      }
      this.wake();
    }, 64 * 1024 * 1024);
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        this.error = err as Error;
        this.wake();
      }
    });
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', () => {
      /* reported as close */
    });
  }

  static connect(target: ClientTarget, timeoutMs = 5000): Promise<MilterTestClient> {
    return new Promise((resolve, reject) => {
      const s =
        'path' in target
          ? connect(target.path)
          : connect({ port: target.port, host: 'address' in target ? target.address : (target.host ?? '127.0.0.1') });
      s.setNoDelay?.(true);
      const client = new MilterTestClient(s, timeoutMs);
      s.once('connect', () => resolve(client));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Resolves once the server has closed the connection (rejects after the timeout). */
  waitClosed(timeoutMs = this.timeoutMs): Promise<void> {
    return withTimeout(this.closedPromise, timeoutMs, 'connection was not closed by the server');
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Writes bytes as they are (for hostile-input tests). */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(cmd: MtaCommand): void {
    this.socket.write(encodeCommand(cmd));
  }

  /** Sends a `D` packet for the stage of `type` (or a raw stage byte). */
  sendMacros(stage: MtaCommand['type'] | number, macros: MacroInput = {}): void {
    const byte = typeof stage === 'number' ? stage : STAGE_BYTE[stage];
    if (byte === undefined) throw new Error(`no macro stage for ${String(stage)}`);
    const pairs = (Array.isArray(macros) ? macros : Object.entries(macros)).map(([name, value]) => ({ name, value }));
    this.send({ type: 'macro', stage: byte, pairs });
  }

  /** Next response packet; rejects on timeout, close or an undecodable packet. */
  async readResponse(timeoutMs = this.timeoutMs): Promise<MilterResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.error) throw this.error;
      if (this.isClosed) throw new Error('connection closed while waiting for a response');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a response');
      await withTimeout(new Promise<void>((r) => (this.waiter = r)), left, 'timed out waiting for a response').catch(() => undefined);
    }
    return this.inbox.shift()!;
  }

  /** Asserts that nothing arrives within `ms` (for commands that must not be answered). */
  async expectSilence(ms = 100): Promise<void> {
    await sleep(ms);
    if (this.error) throw this.error;
    if (this.inbox.length > 0) throw new Error(`unexpected response ${JSON.stringify(this.inbox[0]!.type)}`);
  }

  /** Responses already received and not read. */
  get pending(): number {
    return this.inbox.length;
  }

  async negotiate(offer: { version?: number; actions?: number; protocol?: number } = {}): Promise<OptnegReply> {
    this.send({
      type: 'optneg',
      version: offer.version ?? POSTFIX_OFFER.version,
      actions: offer.actions ?? POSTFIX_OFFER.actions,
      protocol: offer.protocol ?? POSTFIX_OFFER.protocol,
    });
    const r = await this.readResponse();
    if (r.type !== 'optneg') throw new Error(`expected an OPTNEG reply, got ${r.type}`);
    this.version = r.version;
    this.actions = r.actions;
    this.protocol = r.protocol;
    return r;
  }

  /** Whether `cmd` gets a reply under the negotiated flags. */
  expectsReply(cmd: MtaCommand): boolean {
    if (cmd.type === 'abort' || cmd.type === 'quit' || cmd.type === 'quitNc' || cmd.type === 'macro') return false;
    const nr = NR_FOR[cmd.type];
    return nr === undefined || (this.protocol & nr) === 0;
  }

  /** Sends `D` (when macros are given) and the command, then reads its whole answer. */
  async command(cmd: MtaCommand, macros?: MacroInput): Promise<Reply> {
    if (macros !== undefined) this.sendMacros(cmd.type, macros);
    this.send(cmd);
    return this.readReply(this.expectsReply(cmd));
  }

  /** Reads modifications until a final reply (or nothing, when no reply is expected). */
  async readReply(expected = true): Promise<Reply> {
    const modifications: MilterResponse[] = [];
    if (!expected) return { modifications, final: undefined };
    for (;;) {
      const r = await this.readResponse();
      if (isFinalResponse(r)) return { modifications, final: r };
      modifications.push(r);
    }
  }

  connectCmd(hostname: string, address = '127.0.0.1', port = 4321, macros?: MacroInput): Promise<Reply> {
    const family = address.includes(':') ? 'inet6' : 'inet';
    return this.command({ type: 'connect', hostname, family, port, address }, macros);
  }
  helo(name: string, macros?: MacroInput): Promise<Reply> {
    return this.command({ type: 'helo', name }, macros);
  }
  mail(sender: string, args: string[] = [], macros?: MacroInput): Promise<Reply> {
    return this.command({ type: 'mail', args: [sender, ...args] }, macros);
  }
  rcpt(recipient: string, args: string[] = [], macros?: MacroInput): Promise<Reply> {
    return this.command({ type: 'rcpt', args: [recipient, ...args] }, macros);
  }
  data(macros?: MacroInput): Promise<Reply> {
    return this.command({ type: 'data' }, macros);
  }
  header(name: string, value: string, macros?: MacroInput): Promise<Reply> {
    return this.command({ type: 'header', name, value }, macros);
  }
  eoh(macros?: MacroInput): Promise<Reply> {
    return this.command({ type: 'eoh' }, macros);
  }
  body(chunk: Buffer | string, macros?: MacroInput): Promise<Reply> {
    return this.command({ type: 'body', chunk: typeof chunk === 'string' ? Buffer.from(chunk) : chunk }, macros);
  }
  eom(macros?: MacroInput): Promise<Reply> {
    return this.command({ type: 'eob', data: Buffer.alloc(0) }, macros);
  }
  unknown(line: string, macros?: MacroInput): Promise<Reply> {
    return this.command({ type: 'unknown', line }, macros);
  }
  /**
   * One message as Postfix sends it to a milter that asked for sos-milter's macros: MAIL with
   * the queue id, one RCPT with its next hop, end of message. Resolves with the final reply.
   */
  async message(sender: string, queueId: string, rcpt = '<rcpt@example.net>'): Promise<MilterResponse | undefined> {
    await this.mail(sender, [], { i: queueId, '{mail_addr}': sender.replace(/^<|>$/g, '') });
    await this.rcpt(rcpt, [], { i: queueId, '{rcpt_host}': 'mx.example.net', '{rcpt_addr}': rcpt.replace(/^<|>$/g, '') });
    return (await this.eom({ i: queueId })).final;
  }

  /** OPTNEG and CONNECT/HELO as Postfix opens an SMTP session. */
  async openSession(clientAddress = '192.0.2.10'): Promise<void> {
    await this.negotiate();
    await this.connectCmd('client.example', clientAddress, 4321, { '{client_addr}': clientAddress });
    await this.helo('client.example');
  }

  abort(): void {
    this.send({ type: 'abort' });
  }
  quit(): void {
    this.send({ type: 'quit' });
  }
  quitNc(): void {
    this.send({ type: 'quitNc' });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]);
}
