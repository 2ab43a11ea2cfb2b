/** The parsed form of an SPF record (RFC 7208 §4.6, §5, §6). */

export type Qualifier = '+' | '-' | '~' | '?';

export type MechanismName = 'all' | 'include' | 'a' | 'mx' | 'ptr' | 'ip4' | 'ip6' | 'exists';

/** One piece of a macro-string (RFC 7208 §7.1). */
export type MacroToken =
  | { kind: 'literal'; text: string }
  | {
      kind: 'macro';
      /** Lower-case macro letter: s l o d i p h v c r t. */
      letter: string;
      /** Upper-case letter in the source: URL-escape the value. */
      escape: boolean;
      /** Number of right-hand parts to keep; 0 keeps all. */
      keep: number;
      reverse: boolean;
      /** Characters to split on; "." when none were given. */
      delimiters: string;
    };

export interface MacroString {
  /** The source text. */
  text: string;
  tokens: MacroToken[];
  /** Whether any %{…} expansion occurs (otherwise the literal is the value). */
  hasMacros: boolean;
  /** Whether %{p} occurs: expansion needs PTR validation first. */
  usesPtr: boolean;
  /** The text ends in a macro-expand (%{…}, %%, %_ or %-): a valid domain-end. */
  endsWithMacro: boolean;
}

interface TermBase {
  /** The term exactly as written in the record. */
  text: string;
  /** Offset of the term in the record text. */
  position: number;
}

export interface MechanismTerm extends TermBase {
  kind: 'mechanism';
  name: MechanismName;
  qualifier: Qualifier;
  /** Target domain-spec of include/a/mx/ptr/exists, when written. */
  domainSpec?: MacroString;
  /** a/mx: IPv4 prefix length (32 when absent); ip4: network prefix length. */
  cidr4?: number;
  /** a/mx: IPv6 prefix length (128 when absent); ip6: network prefix length. */
  cidr6?: number;
  /** ip4/ip6: the network as written and as octets. */
  network?: string;
  networkBytes?: Uint8Array;
}

export interface ModifierTerm extends TermBase {
  kind: 'modifier';
  /** Lower-case modifier name (redirect, exp, or any unknown name). */
  name: string;
  value: MacroString;
}

export type SpfTerm = MechanismTerm | ModifierTerm;

export interface SpfRecord {
  /** The record text (strings joined). */
  text: string;
  /** All terms in order. */
  terms: readonly SpfTerm[];
  mechanisms: readonly MechanismTerm[];
  redirect?: ModifierTerm;
  exp?: ModifierTerm;
  /** The record has an `all` mechanism (so any redirect= is ignored, RFC 7208 §6.1). */
  hasAll: boolean;
}

/** Mechanisms and modifiers that cost one of the 10 DNS-querying terms (RFC 7208 §4.6.4). */
export function isDnsTerm(name: string): boolean {
  return name === 'include' || name === 'a' || name === 'mx' || name === 'ptr' || name === 'exists' || name === 'redirect';
}
