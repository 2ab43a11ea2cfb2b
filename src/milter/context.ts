/** The context object handed to every callback of one milter connection. */
import type { MilterContext, NegotiatedOptions } from './application.js';
import type { ConnectInfo } from './commands.js';
import { ActionFlag } from './constants.js';
import { MilterUsageError } from './errors.js';
import type { MacroStore } from './macros.js';
import { encodeReplaceBody, encodeResponse, type MilterResponse, SIMPLE_PACKETS } from './responses.js';

export class ConnectionContext implements MilterContext {
  connection: ConnectInfo | undefined = undefined;
  helo: string | undefined = undefined;
  negotiated: NegotiatedOptions | undefined = undefined;
  state: Record<string, unknown> = {};
  /** True only while the eom callback runs: modifications are legal then. */
  inEom = false;
  /** Encoded modification packets collected during eom (body replacement kept apart: it must go first). */
  bodyPackets: Buffer[] = [];
  editPackets: Buffer[] = [];

  constructor(
    readonly id: string,
    private readonly store: MacroStore,
    /** Writes a packet to the MTA at once (used by progress). */
    private readonly writeNow: (packet: Buffer) => void,
  ) {}

  macro(name: string): string | undefined {
    return this.store.get(name);
  }

  macros(): Record<string, string> {
    return this.store.all();
  }

  resetMessage(): void {
    this.state = {};
    this.inEom = false;
    // Usually empty: keep the arrays instead of allocating new ones per message.
    if (this.bodyPackets.length > 0) this.bodyPackets = [];
    if (this.editPackets.length > 0) this.editPackets = [];
  }

  private edit(flag: number, what: string, r: MilterResponse): void {
    this.check(what, flag);
    this.editPackets.push(encodeResponse(r));
  }

  private check(what: string, flag: number): void {
    if (!this.inEom) throw new MilterUsageError('NOT_AT_EOM', `${what} is only allowed in the eom callback`);
    if (!this.negotiated || (this.negotiated.actions & flag) === 0) {
      throw new MilterUsageError('ACTION_NOT_NEGOTIATED', `${what} needs an action that was not negotiated with the MTA`);
    }
  }

  addHeader(name: string, value: string): void {
    this.edit(ActionFlag.ADDHDRS, 'addHeader', { type: 'addHeader', name, value });
  }

  insertHeader(index: number, name: string, value: string): void {
    this.edit(ActionFlag.ADDHDRS, 'insertHeader', { type: 'insHeader', index, name, value });
  }

  changeHeader(name: string, index: number, value: string): void {
    this.edit(ActionFlag.CHGHDRS, 'changeHeader', { type: 'chgHeader', index, name, value });
  }

  addRecipient(rcpt: string, esmtpArgs?: string): void {
    if (esmtpArgs === undefined || esmtpArgs === '') {
      // Prefer the plain form when negotiated: older MTAs know only ADDRCPT.
      if (this.negotiated && this.negotiated.actions & ActionFlag.ADDRCPT) {
        this.edit(ActionFlag.ADDRCPT, 'addRecipient', { type: 'addRcpt', rcpt });
        return;
      }
      this.edit(ActionFlag.ADDRCPT_PAR, 'addRecipient', { type: 'addRcptPar', rcpt });
      return;
    }
    this.edit(ActionFlag.ADDRCPT_PAR, 'addRecipient with ESMTP arguments', { type: 'addRcptPar', rcpt, args: esmtpArgs });
  }

  deleteRecipient(rcpt: string): void {
    this.edit(ActionFlag.DELRCPT, 'deleteRecipient', { type: 'delRcpt', rcpt });
  }

  changeSender(sender: string, esmtpArgs?: string): void {
    const r: MilterResponse = esmtpArgs ? { type: 'chgFrom', sender, args: esmtpArgs } : { type: 'chgFrom', sender };
    this.edit(ActionFlag.CHGFROM, 'changeSender', r);
  }

  replaceBody(body: Buffer | string): void {
    this.check('replaceBody', ActionFlag.CHGBODY);
    const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    // Successive calls append, as with smfi_replacebody; an empty call still sends one empty `b`.
    if (buf.length === 0 && this.bodyPackets.length > 0) return;
    this.bodyPackets.push(...encodeReplaceBody(buf));
  }

  quarantine(reason: string): void {
    this.edit(ActionFlag.QUARANTINE, 'quarantine', { type: 'quarantine', reason });
  }

  progress(): void {
    if (!this.inEom) throw new MilterUsageError('NOT_AT_EOM', 'progress is only allowed in the eom callback');
    this.writeNow(SIMPLE_PACKETS.progress);
  }
}

