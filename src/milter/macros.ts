/**
 * Per-stage macro storage, as libmilter keeps it: one slot per stage, a new `D` replaces its
 * slot, a command clears the slots of later stages, ABORT clears nothing, and lookups search
 * the newest stage first. Names are stored bare (`{client_addr}` -> `client_addr`), so a
 * lookup finds a macro however the MTA or the caller spelled the braces.
 */
import { Cmd } from './constants.js';
import { MilterProtocolError } from './errors.js';
import { decodeWireString } from './strings.js';

/**
 * A `D` packet's macros as one flat list, name then value (`['i', 'Q1', 'rcpt_host', 'mx.example']`),
 * bare names; later pairs win. A flat list, not a Map: a stage holds one to five macros, and a
 * Map per packet was 11 % of all the daemon allocated per message (`node dist/bench/profile.js --alloc`).
 */
export type MacroPairs = readonly string[];

/** A `D` packet decoded straight into its lookup list (no pair objects on the hot path). */
export interface MacroPacket {
  type: 'macroPacket';
  stage: number;
  /** Undefined when the packet carried no pairs. */
  macros: MacroPairs | undefined;
}

/**
 * Decodes a `D` payload (an odd count keeps the last name with an empty value; an empty
 * payload carries nothing), building the store's list directly.
 */
export function decodeMacroPacket(p: Buffer): MacroPacket {
  if (p.length === 0) return { type: 'macroPacket', stage: 0, macros: undefined };
  let macros: string[] | undefined;
  const end = p.length;
  let s = 1;
  while (s < end) {
    const nul = p.indexOf(0, s);
    if (nul < 0) throw new MilterProtocolError('MISSING_NUL', 'macro list: last string is not NUL-terminated');
    const name = bareMacroName(decodeWireString(p, s, nul));
    s = nul + 1;
    let value = '';
    if (s < end) {
      const vnul = p.indexOf(0, s);
      if (vnul < 0) throw new MilterProtocolError('MISSING_NUL', 'macro list: last string is not NUL-terminated');
      value = decodeWireString(p, s, vnul);
      s = vnul + 1;
    }
    (macros ??= []).push(name, value);
  }
  return { type: 'macroPacket', stage: p[0]!, macros };
}

/** The value of `name` in a list, the last pair winning as a later `set` would; undefined when absent. */
function lookUp(pairs: MacroPairs, name: string): string | undefined {
  for (let i = pairs.length - 2; i >= 0; i -= 2) if (pairs[i] === name) return pairs[i + 1];
  return undefined;
}

/** Slots in chronological order; UNKN is last so it is consulted first while it holds anything. */
export const enum Slot {
  CONNECT = 0,
  HELO = 1,
  MAIL = 2,
  RCPT = 3,
  DATA = 4,
  EOH = 5,
  EOM = 6,
  UNKNOWN = 7,
}
const SLOT_COUNT = 8;

/** Stage byte of a `D` packet -> slot. Postfix's per-header `D L` and per-chunk `D B` join EOH and EOM. */
function slotOfStage(stage: number): Slot | -1 {
  switch (stage) {
    case Cmd.CONNECT:
      return Slot.CONNECT;
    case Cmd.HELO:
      return Slot.HELO;
    case Cmd.MAIL:
      return Slot.MAIL;
    case Cmd.RCPT:
      return Slot.RCPT;
    case Cmd.DATA:
      return Slot.DATA;
    case Cmd.EOH:
    case Cmd.HEADER:
      return Slot.EOH;
    case Cmd.BODYEOB:
    case Cmd.BODY:
      return Slot.EOM;
    case Cmd.UNKNOWN:
      return Slot.UNKNOWN;
    default:
      return -1;
  }
}

export function bareMacroName(name: string): string {
  return name.length >= 2 && name.charCodeAt(0) === 0x7b && name.charCodeAt(name.length - 1) === 0x7d
    ? name.slice(1, -1)
    : name;
}

export class MacroStore {
  private readonly slots: (MacroPairs | undefined)[] = new Array(SLOT_COUNT).fill(undefined);

  /** Stores a decoded `D` packet (see decodeMacroPacket). Returns false when the stage byte is unknown and the packet was ignored. */
  setPairs(stage: number, macros: MacroPairs | undefined): boolean {
    const slot = slotOfStage(stage);
    if (slot < 0) return false;
    this.slots[slot] = macros;
    return true;
  }

  /** Applies the clearing rule of a command that just arrived (called for every non-`D` command). */
  onCommand(cmd: number): void {
    switch (cmd) {
      case Cmd.CONNECT:
        this.clearFrom(Slot.HELO);
        break;
      case Cmd.HELO:
        this.clearFrom(Slot.MAIL);
        break;
      case Cmd.MAIL:
        this.clearFrom(Slot.RCPT);
        break;
      case Cmd.RCPT:
        this.clearFrom(Slot.DATA);
        break;
      case Cmd.OPTNEG:
      case Cmd.QUIT:
      case Cmd.QUIT_NC:
        this.clearFrom(Slot.CONNECT);
        break;
      default:
        // ABORT clears nothing: a MAIL after ABORT without its own D still sees the old values.
        return;
    }
  }

  private clearFrom(first: Slot): void {
    for (let i = first; i < SLOT_COUNT; i++) this.slots[i] = undefined;
    // UNKNOWN macros belong to one unknown command; they never outlive a stage change.
    this.slots[Slot.UNKNOWN] = undefined;
  }

  /** Looks a macro up by bare or braced name, newest stage first. */
  get(name: string): string | undefined {
    const key = bareMacroName(name);
    for (let i = SLOT_COUNT - 1; i >= 0; i--) {
      const pairs = this.slots[i];
      const v = pairs && lookUp(pairs, key);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** All visible macros (newest stage wins), keyed by bare name. */
  all(): Record<string, string> {
    const out: Record<string, string> = {};
    for (let i = 0; i < SLOT_COUNT; i++) {
      const pairs = this.slots[i];
      if (pairs) for (let j = 0; j < pairs.length; j += 2) out[pairs[j]!] = pairs[j + 1]!;
    }
    return out;
  }

  clear(): void {
    this.clearFrom(Slot.CONNECT);
  }
}
