/**
 * Option negotiation: from the MTA's offer and what the application declares, compute the
 * OPTNEG reply — version, actions, protocol bits and macro symbol lists.
 */
import type { MacroStageName, MilterApplication, ReplyingCallback } from './application.js';
import {
  ActionFlag,
  MacroStage,
  MDS_1M_SIZE,
  MDS_256K_SIZE,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  ProtoFlag,
  V1_ACTIONS,
  V1_PROTOCOL,
} from './constants.js';
import { MilterEncodeError, MilterProtocolError } from './errors.js';
import type { SymbolList } from './responses.js';
import { bareMacroName } from './macros.js';

export interface Offer {
  version: number;
  actions: number;
  protocol: number;
}

export interface Negotiation {
  version: number;
  actions: number;
  protocol: number;
  symbolLists: SymbolList[];
  /** Declared things the MTA could not grant, for a warning log line. */
  unavailable: string[];
}

interface CallbackBits {
  skip: number;
  noReply: number;
}

const CALLBACK_BITS: Record<ReplyingCallback, CallbackBits> = {
  connect: { skip: ProtoFlag.NOCONNECT, noReply: ProtoFlag.NR_CONN },
  helo: { skip: ProtoFlag.NOHELO, noReply: ProtoFlag.NR_HELO },
  envfrom: { skip: ProtoFlag.NOMAIL, noReply: ProtoFlag.NR_MAIL },
  envrcpt: { skip: ProtoFlag.NORCPT, noReply: ProtoFlag.NR_RCPT },
  data: { skip: ProtoFlag.NODATA, noReply: ProtoFlag.NR_DATA },
  header: { skip: ProtoFlag.NOHDRS, noReply: ProtoFlag.NR_HDR },
  eoh: { skip: ProtoFlag.NOEOH, noReply: ProtoFlag.NR_EOH },
  body: { skip: ProtoFlag.NOBODY, noReply: ProtoFlag.NR_BODY },
  unknown: { skip: ProtoFlag.NOUNKNOWN, noReply: ProtoFlag.NR_UNKN },
};

const STAGE_NUMBER: Record<MacroStageName, number> = {
  connect: MacroStage.CONNECT,
  helo: MacroStage.HELO,
  envfrom: MacroStage.ENVFROM,
  envrcpt: MacroStage.ENVRCPT,
  data: MacroStage.DATA,
  eoh: MacroStage.EOH,
  eom: MacroStage.EOM,
};

/** Long macro names travel braced (`{client_addr}`), one-letter names bare (`i`). */
export function wireMacroName(name: string): string {
  const bare = bareMacroName(name.trim());
  if (bare.length === 0 || /[\s{}\0,]/.test(bare)) {
    throw new MilterEncodeError('BAD_MACRO_NAME', `macro name ${JSON.stringify(name)} is not valid`);
  }
  return bare.length === 1 ? bare : `{${bare}}`;
}

/** Symbol lists for the OPTNEG reply, validated once when the server is created. */
export function buildSymbolLists(macros: MilterApplication['macros']): SymbolList[] {
  const out: SymbolList[] = [];
  if (!macros) return out;
  for (const [stage, names] of Object.entries(macros) as [MacroStageName, readonly string[] | undefined][]) {
    const n = STAGE_NUMBER[stage];
    if (n === undefined) throw new MilterEncodeError('BAD_MACRO_STAGE', `unknown macro stage ${JSON.stringify(stage)}`);
    if (!names || names.length === 0) continue;
    const wire = [...new Set(names.map(wireMacroName))];
    // Sendmail accepts at most 50 names per stage.
    if (wire.length > 50) throw new MilterEncodeError('TOO_MANY_MACROS', `more than 50 macros requested at stage ${stage}`);
    out.push({ stage: n, names: wire.join(' ') });
  }
  return out.sort((a, b) => a.stage - b.stage);
}

/** Stages whose macros should arrive even though the application has no callback there. */
function stagesWithMacros(lists: readonly SymbolList[]): Set<number> {
  return new Set(lists.map((l) => l.stage));
}

/**
 * Computes the reply to OPTNEG. Throws MilterProtocolError if the MTA's version is below 2.
 * `mtaMaxPayload` is our inbound limit: an MDS size flag is echoed only if we can take it.
 */
export function negotiate(
  rawOffer: Offer,
  app: MilterApplication,
  symbolLists: readonly SymbolList[],
  maxPayload: number,
): Negotiation {
  if (rawOffer.version < MIN_PROTOCOL_VERSION) {
    throw new MilterProtocolError('OLD_VERSION', `MTA offers protocol version ${rawOffer.version}, at least 2 is required`);
  }
  // libmilter reads zero fields as the version-1 defaults.
  const offer: Offer = {
    version: rawOffer.version,
    actions: rawOffer.actions === 0 ? V1_ACTIONS : rawOffer.actions,
    protocol: rawOffer.protocol === 0 ? V1_PROTOCOL : rawOffer.protocol,
  };
  const unavailable: string[] = [];
  const version = Math.min(PROTOCOL_VERSION, offer.version);

  let actions = 0;
  for (const name of app.actions ?? []) {
    const bit = ActionFlag[name];
    if (bit === undefined) throw new MilterEncodeError('BAD_ACTION', `unknown action ${JSON.stringify(name)}`);
    if (offer.actions & bit) actions |= bit;
    else unavailable.push(`action ${name}`);
  }
  let lists: SymbolList[] = [];
  if (symbolLists.length > 0) {
    if (offer.actions & ActionFlag.SETSYMLIST) {
      actions |= ActionFlag.SETSYMLIST;
      lists = [...symbolLists];
    } else {
      unavailable.push('macro lists (SETSYMLIST)');
    }
  }

  const offered = offer.protocol;
  let protocol = 0;
  const wanted = stagesWithMacros(lists);
  const noReply = new Set(app.noReply ?? []);
  for (const [cb, bits] of Object.entries(CALLBACK_BITS) as [ReplyingCallback, CallbackBits][]) {
    const implemented = typeof app[cb] === 'function';
    // EOH macros come with the N command only; keep N if they were asked for.
    const needed = implemented || (cb === 'eoh' && wanted.has(MacroStage.EOH));
    if (!needed && offered & bits.skip) protocol |= bits.skip;
    else if ((!implemented || noReply.has(cb)) && offered & bits.noReply) protocol |= bits.noReply;
    else if (implemented && noReply.has(cb)) unavailable.push(`no-reply for ${cb}`);
  }
  if (typeof app.body === 'function' && offered & ProtoFlag.SKIP) protocol |= ProtoFlag.SKIP;
  if (app.headerLeadingSpace) {
    if (offered & ProtoFlag.HDR_LEADSPC) protocol |= ProtoFlag.HDR_LEADSPC;
    else unavailable.push('header leading space');
  }
  if (app.rejectedRecipients) {
    if (offered & ProtoFlag.RCPT_REJ) protocol |= ProtoFlag.RCPT_REJ;
    else unavailable.push('rejected recipients');
  }
  // Echo the largest packet size the MTA offers and we accept (FFR builds only; Postfix never offers).
  if (offered & ProtoFlag.MDS_1M && maxPayload >= MDS_1M_SIZE) protocol |= ProtoFlag.MDS_1M;
  else if (offered & ProtoFlag.MDS_256K && maxPayload >= MDS_256K_SIZE) protocol |= ProtoFlag.MDS_256K;

  return { version, actions, protocol: protocol >>> 0, symbolLists: lists, unavailable };
}

const STAGE_NAME_BY_NUMBER = new Map<number, string>(Object.entries(STAGE_NUMBER).map(([name, n]) => [n, name]));

/** Names of the bits set in `bits` per `table`; bits the table does not know are shown in hex. */
export function flagNames(bits: number, table: Readonly<Record<string, number>>): string[] {
  const names: string[] = [];
  let known = 0;
  for (const [name, bit] of Object.entries(table)) {
    known |= bit;
    if (bits & bit) names.push(name);
  }
  const rest = (bits & ~known) >>> 0;
  if (rest !== 0) names.push(`0x${rest.toString(16)}`);
  return names;
}

/**
 * Both sides of a negotiation in words, for the debug log: an operator comparing what the MTA
 * offered with what was agreed should not have to decode bit masks by hand.
 */
export function describeNegotiation(offer: Offer, agreed: Offer, symbolLists: readonly SymbolList[]): Record<string, unknown> {
  const macros: Record<string, string> = {};
  for (const l of symbolLists) macros[STAGE_NAME_BY_NUMBER.get(l.stage) ?? String(l.stage)] = l.names;
  return {
    offered: { version: offer.version, actions: flagNames(offer.actions, ActionFlag), protocol: flagNames(offer.protocol, ProtoFlag) },
    agreed: { version: agreed.version, actions: flagNames(agreed.actions, ActionFlag), protocol: flagNames(agreed.protocol, ProtoFlag) },
    macros,
  };
}
