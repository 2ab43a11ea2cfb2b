import { DnsError, type RecordTypeMap, type Resolver, type RRType } from '../dns/types.js';
import type { MacroString, MechanismTerm, Qualifier, SpfRecord } from './ast.js';
import { isDnsTerm } from './ast.js';
import {
  isQueryableName,
  isSameOrSubdomain,
  isValidIdentityDomain,
  normaliseIdentityDomain,
  stripTrailingDot,
  truncateName,
} from './domain.js';
import { SpfInputError, SpfSyntaxError } from './errors.js';
import { type IpAddress, ipMacroValue, parseClientIp, parseIpv4, parseIpv6, reverseName, sameNetwork } from './ip.js';
import { type ExpansionBound, expandMacroString, type MacroValues, parseMacroString } from './macro.js';
import { isSpfRecord } from './parser.js';
import { MemoResolver } from './memo-resolver.js';
import { parseRecordCached } from './record-cache.js';
import type { DnsQueryTrace, SpfResult, SpfTrace, SpfTraceNode } from './trace.js';

export interface SpfLimits {
  /** DNS-querying terms (include, a, mx, ptr, exists, redirect) per check_host(), across includes and redirects. */
  dnsMechanisms: number;
  /** Lookups answering NXDOMAIN or NODATA. */
  voidLookups: number;
  /** MX records one mx mechanism may look at; more is permerror. */
  mxNames: number;
  /** PTR names looked at by ptr and %{p}; the rest are ignored. */
  ptrNames: number;
}

export const DEFAULT_LIMITS: Readonly<SpfLimits> = Object.freeze({ dnsMechanisms: 10, voidLookups: 2, mxNames: 10, ptrNames: 10 });

/** Used when the deciding record has no usable exp= (RFC 7208 §6.2: locally generated). Macro-expanded. */
export const DEFAULT_EXPLANATION = 'The SPF policy of %{o} does not authorise %{c} to send mail as %{s}';

export interface SpfEvaluatorOptions {
  resolver: Resolver;
  limits?: Partial<SpfLimits>;
  /** Explanation for fail results without a usable exp=; may contain macros (exp syntax). */
  defaultExplanation?: string;
  /** %{r}: the receiving host's domain name; "unknown" when not given. */
  receiverHost?: string;
  /** %{t}: clock in milliseconds since the epoch (Date.now by default). */
  now?: () => number;
}

export interface CheckHostInput {
  ip: string;
  /** MAIL FROM; '' for the null reverse-path (then postmaster@helo is checked). */
  sender: string;
  helo: string;
  /** The <domain> to check; the sender's domain (or the HELO for a null sender) by default. */
  domain?: string;
}

export interface SpfCheck {
  result: SpfResult;
  /** Set for fail results: the exp= text of the deciding record, or the default explanation. */
  explanation?: string;
  reason: string;
  trace: SpfTrace;
}

export interface EffectiveRecord {
  status: 'found' | 'none' | 'permerror' | 'temperror';
  /** The domain whose record is effective (after redirects). */
  domain: string;
  /** That record's text as published (strings joined). */
  text?: string;
  record?: SpfRecord;
  /** Queried domain first, then each redirect target. */
  chain: { domain: string; text?: string }[];
  /** Why none/permerror/temperror, or how the record was found. */
  reason: string;
}

/** Ends evaluation with permerror or temperror (RFC 7208 §4.6.4, §5, §6). */
class Abort extends Error {
  constructor(
    readonly result: 'permerror' | 'temperror',
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Per check_host() state, shared by the includes and redirects it runs. */
interface Check {
  resolver: Resolver;
  ip: IpAddress;
  values: MacroValues;
  trace: SpfTrace;
  validatedNames?: Promise<string[]>;
}

interface DomainOutcome {
  result: SpfResult;
  explanation?: string;
  explanationSource?: 'exp' | 'default';
  matched?: { term: string; domain: string };
  reason: string;
}

type RecordSelection =
  | { status: 'found'; text: string; record: SpfRecord }
  | { status: 'none' | 'permerror' | 'temperror'; text?: string; reason: string };

const QUALIFIER_RESULT: Record<Qualifier, SpfResult> = { '+': 'pass', '-': 'fail', '~': 'softfail', '?': 'neutral' };

export class SpfEvaluator {
  private readonly resolver: Resolver;
  private readonly limits: SpfLimits;
  private readonly defaultExplanation: MacroString;
  private readonly receiverHost: string;
  private readonly now: () => number;

  constructor(opts: SpfEvaluatorOptions) {
    this.resolver = opts.resolver;
    this.limits = { ...DEFAULT_LIMITS, ...dropUndefined(opts.limits ?? {}) };
    const explanation = opts.defaultExplanation ?? DEFAULT_EXPLANATION;
    try {
      this.defaultExplanation = parseMacroString(explanation, 'explain');
    } catch {
      // A default that is not valid macro syntax is used literally.
      this.defaultExplanation = { text: explanation, tokens: [{ kind: 'literal', text: explanation }], hasMacros: false, usesPtr: false, endsWithMacro: false };
    }
    this.receiverHost = opts.receiverHost ?? 'unknown';
    this.now = opts.now ?? Date.now;
  }

  checkHost(input: CheckHostInput): Promise<SpfCheck> {
    return this.run(input, this.resolver);
  }

  async checkHostForIps(sender: string, helo: string, ips: string[]): Promise<Map<string, SpfCheck>> {
    for (const ip of ips) if (!parseClientIp(ip)) throw new SpfInputError(`not an IP address: '${ip}'`);
    const shared = new MemoResolver(this.resolver);
    const out = new Map<string, SpfCheck>();
    // Evaluate a few at a time: answers are shared through the memo, and a long list of
    // relays must not turn into a burst of parallel upstream queries.
    const queue = [...new Set(ips)];
    const worker = async () => {
      for (let ip = queue.shift(); ip !== undefined; ip = queue.shift()) {
        out.set(ip, await this.run({ ip, sender, helo }, shared));
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
    const ordered = new Map<string, SpfCheck>();
    for (const ip of ips) ordered.set(ip, out.get(ip) as SpfCheck);
    return ordered;
  }

  async effectiveRecord(domain: string): Promise<EffectiveRecord> {
    const chain: { domain: string; text?: string }[] = [];
    const normalised = normaliseIdentityDomain(domain);
    if (normalised === null || !isValidIdentityDomain(normalised)) {
      return { status: 'none', domain, chain: [{ domain }], reason: `'${domain}' is not a valid domain name` };
    }
    const seen = new Set<string>();
    let current = normalised;
    for (let hops = 0; ; hops++) {
      seen.add(current.toLowerCase());
      const sel = await selectRecord(this.resolver, current, () => undefined);
      chain.push({ domain: current, text: sel.text });
      if (sel.status !== 'found') {
        const status = sel.status === 'none' && hops > 0 ? 'permerror' : sel.status;
        const reason = hops > 0 && sel.status === 'none' ? `redirect target ${current} has no SPF record` : sel.reason;
        return { status, domain: current, text: sel.text, chain, reason };
      }
      const { record } = sel;
      if (record.hasAll || !record.redirect) {
        const reason = hops === 0 ? `SPF record of ${current}` : `SPF record of ${current}, reached by ${hops} redirect(s)`;
        return { status: 'found', domain: current, text: sel.text, record, chain, reason };
      }
      if (hops + 1 > this.limits.dnsMechanisms) {
        return { status: 'permerror', domain: current, text: sel.text, chain, reason: `more than ${this.limits.dnsMechanisms} redirects` };
      }
      const spec = record.redirect.value;
      const clientLetter = spec.tokens.find((t) => t.kind === 'macro' && !'slod'.includes(t.letter));
      if (clientLetter && clientLetter.kind === 'macro') {
        return {
          status: 'permerror',
          domain: current,
          text: sel.text,
          chain,
          reason: `redirect target '${spec.text}' depends on the connection (%{${clientLetter.letter}})`,
        };
      }
      const sender = `postmaster@${normalised}`;
      const values = { ...EMPTY_VALUES, s: sender, l: 'postmaster', o: normalised, d: current };
      const target = truncateName(stripTrailingDot(expandMacroString(spec, values)));
      if (!isQueryableName(target)) {
        return { status: 'permerror', domain: current, text: sel.text, chain, reason: `redirect target '${target}' is not a valid domain name` };
      }
      if (seen.has(target.toLowerCase())) {
        chain.push({ domain: target });
        return { status: 'permerror', domain: current, text: sel.text, chain, reason: 'redirect loop' };
      }
      current = target;
    }
  }

  private async run(input: CheckHostInput, resolver: Resolver): Promise<SpfCheck> {
    const ip = parseClientIp(input.ip);
    if (!ip) throw new SpfInputError(`not an IP address: '${input.ip}'`);
    const helo = input.helo ?? '';
    const { sender, local, senderDomain } = splitSender(input.sender ?? '', helo);
    const rawDomain = input.domain ?? senderDomain;
    const trace: SpfTrace = {
      ip: ip.text,
      sender,
      domain: rawDomain,
      helo,
      result: 'none',
      queries: [],
      dnsTerms: 0,
      voidLookups: 0,
      reason: '',
    };
    const finish = (o: DomainOutcome): SpfCheck => {
      trace.result = o.result;
      trace.reason = o.reason;
      if (o.matched) trace.matched = o.matched;
      if (o.result === 'fail' && o.explanation !== undefined) {
        trace.explanation = o.explanation;
        trace.explanationSource = o.explanationSource;
        return { result: o.result, explanation: o.explanation, reason: o.reason, trace };
      }
      return { result: o.result, reason: o.reason, trace };
    };
    const domain = normaliseIdentityDomain(rawDomain);
    if (domain === null || !isValidIdentityDomain(domain)) {
      return finish({ result: 'none', reason: `'${rawDomain}' is not a valid domain name; nothing to check` });
    }
    trace.domain = domain;
    const values: MacroValues = {
      s: sender,
      l: local,
      o: senderDomain,
      d: domain,
      i: ipMacroValue(ip),
      p: 'unknown',
      v: ip.family === 4 ? 'in-addr' : 'ip6',
      h: helo,
      c: ip.text,
      r: this.receiverHost,
      t: String(Math.floor(this.now() / 1000)),
    };
    const check: Check = { resolver, ip, values, trace };
    const root: SpfTraceNode = { domain, via: 'check_host', children: [] };
    trace.root = root;
    try {
      return finish(await this.evalDomain(check, domain, root, true));
    } catch (e) {
      if (e instanceof Abort) return finish({ result: e.result, reason: e.reason });
      // No exception escapes: an unexpected failure (e.g. a resolver bug) is a temporary error.
      return finish({ result: 'temperror', reason: `internal error: ${e instanceof Error ? e.message : String(e)}` });
    }
  }

  /** check_host() on one domain; throws Abort for permerror/temperror. */
  private async evalDomain(c: Check, domain: string, node: SpfTraceNode, wantExplanation: boolean): Promise<DomainOutcome> {
    try {
      const outcome = await this.evalDomainInner(c, domain, node, wantExplanation);
      node.result = outcome.result;
      node.reason = outcome.reason;
      return outcome;
    } catch (e) {
      if (e instanceof Abort) {
        node.result = e.result;
        node.reason = e.reason;
      }
      throw e;
    }
  }

  private async evalDomainInner(c: Check, domain: string, node: SpfTraceNode, wantExplanation: boolean): Promise<DomainOutcome> {
    const sel = await selectRecord(c.resolver, domain, (q) => c.trace.queries.push(q));
    if (sel.text !== undefined) node.record = sel.text;
    if (sel.status === 'none') return { result: 'none', reason: sel.reason };
    if (sel.status !== 'found') throw new Abort(sel.status, sel.reason);
    const { record } = sel;

    for (const mech of record.mechanisms) {
      if (isDnsTerm(mech.name)) this.countDnsTerm(c, mech.text, domain);
      if (!(await this.matches(c, domain, mech, node))) continue;
      const result = QUALIFIER_RESULT[mech.qualifier];
      node.matched = mech.text;
      const outcome: DomainOutcome = {
        result,
        matched: { term: mech.text, domain },
        reason: `'${mech.text}' in the SPF record of ${domain} matched ${c.ip.text}`,
      };
      if (result === 'fail' && wantExplanation) await this.explain(c, domain, record, outcome);
      return outcome;
    }

    if (record.redirect && !record.hasAll) {
      const term = record.redirect;
      this.countDnsTerm(c, term.text, domain);
      node.matched = term.text;
      const target = await this.targetName(c, domain, term.value);
      const child: SpfTraceNode = { domain: target, via: 'redirect', term: term.text, children: [] };
      node.children.push(child);
      if (!isQueryableName(target)) throw new Abort('permerror', `redirect target '${target}' in ${domain} is not a valid domain name`);
      const outcome = await this.evalDomain(c, target, child, wantExplanation);
      if (outcome.result === 'none') throw new Abort('permerror', `redirect target ${target} (from ${domain}) has no SPF record`);
      return { ...outcome, reason: `${outcome.reason} (redirected from ${domain})` };
    }
    return { result: 'neutral', reason: `no term in the SPF record of ${domain} matched ${c.ip.text}; default result neutral` };
  }

  private countDnsTerm(c: Check, term: string, domain: string): void {
    c.trace.dnsTerms++;
    if (c.trace.dnsTerms > this.limits.dnsMechanisms) {
      throw new Abort('permerror', `more than ${this.limits.dnsMechanisms} DNS-querying terms (reached '${term}' in ${domain})`);
    }
  }

  private async matches(c: Check, domain: string, m: MechanismTerm, node: SpfTraceNode): Promise<boolean> {
    switch (m.name) {
      case 'all':
        return true;
      case 'ip4':
        return c.ip.family === 4 && sameNetwork(c.ip.bytes, m.networkBytes as Uint8Array, m.cidr4 as number);
      case 'ip6':
        return c.ip.family === 6 && sameNetwork(c.ip.bytes, m.networkBytes as Uint8Array, m.cidr6 as number);
      case 'a': {
        const target = await this.targetName(c, domain, m.domainSpec);
        const addrs = await this.addresses(c, target, true);
        return addrs !== null && this.anyInNetwork(c, addrs, m);
      }
      case 'mx': {
        const target = await this.targetName(c, domain, m.domainSpec);
        const mxs = (await this.query(c, target, 'MX', true)) ?? [];
        if (mxs.length > this.limits.mxNames) {
          throw new Abort('permerror', `'${m.text}' in ${domain}: ${target} has ${mxs.length} MX records (limit ${this.limits.mxNames})`);
        }
        for (const mx of mxs) {
          const addrs = await this.addresses(c, stripTrailingDot(mx.exchange), false);
          if (addrs !== null && this.anyInNetwork(c, addrs, m)) return true;
        }
        return false;
      }
      case 'ptr': {
        const target = await this.targetName(c, domain, m.domainSpec);
        const names = await this.ptrNames(c, true);
        for (const name of names) {
          // Only names under the target can match, so only those are validated (RFC 7208 §5.5).
          if (isSameOrSubdomain(name, target) && (await this.validates(c, name))) return true;
        }
        return false;
      }
      case 'exists': {
        const target = await this.targetName(c, domain, m.domainSpec);
        const found = await this.query(c, target, 'A', true);
        return found !== null && found.length > 0;
      }
      case 'include': {
        const target = await this.targetName(c, domain, m.domainSpec);
        const child: SpfTraceNode = { domain: target, via: 'include', term: m.text, children: [] };
        node.children.push(child);
        const outcome = await this.evalDomain(c, target, child, false);
        if (outcome.result === 'none') throw new Abort('permerror', `'${m.text}' in ${domain}: ${target} has no SPF record`);
        return outcome.result === 'pass';
      }
    }
  }

  private anyInNetwork(c: Check, addrs: string[], m: MechanismTerm): boolean {
    const bits = c.ip.family === 4 ? (m.cidr4 as number) : (m.cidr6 as number);
    for (const bytes of parsedAddresses(addrs, c.ip.family)) if (sameNetwork(c.ip.bytes, bytes, bits)) return true;
    return false;
  }

  /** The client's family of addresses for `name`; null when the name cannot be queried. */
  private async addresses(c: Check, name: string, countVoid: boolean): Promise<string[] | null> {
    return this.query(c, name, c.ip.family === 4 ? 'A' : 'AAAA', countVoid);
  }

  /** PTR names of the client, first `ptrNames` of them; a DNS error means none (RFC 7208 §5.5). */
  private async ptrNames(c: Check, countVoid: boolean): Promise<string[]> {
    let names: string[] | null;
    try {
      names = await this.query(c, reverseName(c.ip), 'PTR', countVoid);
    } catch (e) {
      if (e instanceof Abort && e.result === 'temperror') return [];
      throw e;
    }
    return (names ?? []).slice(0, this.limits.ptrNames).map(stripTrailingDot);
  }

  /** Forward-confirms a PTR name; DNS errors skip the name (RFC 7208 §5.5). */
  private async validates(c: Check, name: string): Promise<boolean> {
    try {
      const addrs = await this.addresses(c, name, false);
      if (!addrs) return false;
      for (const bytes of parsedAddresses(addrs, c.ip.family)) if (sameNetwork(c.ip.bytes, bytes, bytes.length * 8)) return true;
      return false;
    } catch (e) {
      if (e instanceof Abort && e.result === 'temperror') return false;
      throw e;
    }
  }

  /** %{p}: a validated name of the client, preferring <domain> itself, then a subdomain of it. */
  private async validatedName(c: Check, domain: string): Promise<string> {
    c.validatedNames ??= (async () => {
      const out: string[] = [];
      for (const name of await this.ptrNames(c, false)) if (await this.validates(c, name)) out.push(name);
      return out;
    })();
    const names = await c.validatedNames;
    return (
      names.find((n) => n.toLowerCase() === domain.toLowerCase()) ?? names.find((n) => isSameOrSubdomain(n, domain)) ?? names[0] ?? 'unknown'
    );
  }

  private async expand(c: Check, domain: string, ms: MacroString, bound: ExpansionBound = 'domain'): Promise<string> {
    if (!ms.hasMacros) return expandMacroString(ms, c.values, bound);
    const values = { ...c.values, d: domain };
    if (ms.usesPtr) values.p = await this.validatedName(c, domain);
    return expandMacroString(ms, values, bound);
  }

  /** The <target-name> of a term: its expanded domain-spec, or the current domain. */
  private async targetName(c: Check, domain: string, spec: MacroString | undefined): Promise<string> {
    if (!spec) return domain;
    return truncateName(stripTrailingDot(await this.expand(c, domain, spec)));
  }

  /**
   * One logical lookup. Returns null (and asks nothing) for names no resolver can send: "no
   * match", never an error. Temporary DNS errors abort with temperror; callers that must skip
   * them catch that. Void answers count against the limit when `countVoid`.
   */
  private async query<T extends RRType>(c: Check, name: string, type: T, countVoid: boolean): Promise<RecordTypeMap[T][] | null> {
    const entry: DnsQueryTrace = { name, type, outcome: 'answer', answers: 0, void: false };
    c.trace.queries.push(entry);
    if (!isQueryableName(name)) {
      entry.outcome = 'badname';
      return null;
    }
    let records: RecordTypeMap[T][];
    let nxdomain: boolean;
    try {
      ({ records, nxdomain } = await c.resolver.lookup(name, type));
    } catch (e) {
      if (e instanceof DnsError && !e.temporary) {
        entry.outcome = 'badname';
        return null;
      }
      entry.outcome = 'error';
      entry.error = e instanceof DnsError ? e.code : String(e);
      throw new Abort('temperror', `DNS ${type} lookup of ${name} failed: ${entry.error}`);
    }
    entry.answers = records.length;
    if (records.length === 0) {
      entry.outcome = nxdomain ? 'nxdomain' : 'nodata';
      if (countVoid) {
        entry.void = true;
        c.trace.voidLookups++;
        if (c.trace.voidLookups > this.limits.voidLookups) {
          throw new Abort('permerror', `more than ${this.limits.voidLookups} void DNS lookups (${type} ${name} was ${entry.outcome})`);
        }
      }
    }
    return records;
  }

  /**
   * RFC 7208 §6.2: the explanation for a fail. Any problem with exp= (DNS error, not exactly
   * one TXT record, bad syntax) falls back to the default; exp lookups are not void-counted.
   */
  private async explain(c: Check, domain: string, record: SpfRecord, outcome: DomainOutcome): Promise<void> {
    if (record.exp) {
      try {
        const target = await this.targetName(c, domain, record.exp.value);
        const txt = await this.query(c, target, 'TXT', false);
        if (txt && txt.length === 1) {
          const text = await this.expand(c, domain, parseMacroString(txt[0].join(''), 'explain'), 'explain');
          outcome.explanation = text;
          outcome.explanationSource = 'exp';
          return;
        }
      } catch (e) {
        if (!(e instanceof Abort || e instanceof SpfSyntaxError)) throw e;
      }
    }
    outcome.explanation = await this.expand(c, domain, this.defaultExplanation, 'explain');
    outcome.explanationSource = 'default';
  }
}

/** Addresses of an A/AAAA answer as octets, remembered per answer object (see `picks`). */
const addressCache = new WeakMap<string[], Uint8Array[]>();

function parsedAddresses(addrs: string[], family: 4 | 6): Uint8Array[] {
  let out = addressCache.get(addrs);
  if (!out) {
    out = [];
    for (const a of addrs) {
      const bytes = family === 4 ? parseIpv4(a) : parseIpv6(a);
      if (bytes) out.push(bytes);
    }
    addressCache.set(addrs, out);
  }
  return out;
}

const EMPTY_VALUES: MacroValues = { s: '', l: '', o: '', d: '', i: '', p: 'unknown', v: '', h: '', c: '', r: 'unknown', t: '0' };

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * <sender> and its parts (RFC 7208 §2.4, §4.3): a null reverse-path becomes postmaster@helo, a
 * missing local-part becomes "postmaster". Angle brackets from the SMTP command are dropped.
 */
export function splitSender(raw: string, helo: string): { sender: string; local: string; senderDomain: string } {
  let s = raw.trim();
  if (s.startsWith('<') && s.endsWith('>')) s = s.slice(1, -1);
  if (s === '') return { sender: `postmaster@${helo}`, local: 'postmaster', senderDomain: helo };
  const at = s.lastIndexOf('@');
  const local = at > 0 ? s.slice(0, at) : 'postmaster';
  const senderDomain = at === -1 ? s : s.slice(at + 1);
  return { sender: `${local}@${senderDomain}`, local, senderDomain };
}

/**
 * RFC 7208 §4.4, §4.5: TXT only, strings joined with no separator, non-SPF records ignored,
 * more than one SPF record is permerror.
 */
async function selectRecord(resolver: Resolver, domain: string, log: (q: DnsQueryTrace) => void): Promise<RecordSelection> {
  const entry: DnsQueryTrace = { name: domain, type: 'TXT', outcome: 'answer', answers: 0, void: false };
  log(entry);
  if (!isQueryableName(domain)) {
    entry.outcome = 'badname';
    return { status: 'none', reason: `'${domain}' is not a valid domain name` };
  }
  let txt: string[][];
  try {
    const answer = await resolver.lookup(domain, 'TXT');
    txt = answer.records;
    entry.answers = txt.length;
    if (txt.length === 0) entry.outcome = answer.nxdomain ? 'nxdomain' : 'nodata';
  } catch (e) {
    if (e instanceof DnsError && !e.temporary) {
      entry.outcome = 'badname';
      return { status: 'none', reason: `'${domain}' cannot be looked up (${e.code})` };
    }
    entry.outcome = 'error';
    entry.error = e instanceof DnsError ? e.code : String(e);
    return { status: 'temperror', reason: `DNS TXT lookup of ${domain} failed: ${entry.error}` };
  }
  const picked = pickSpfRecord(txt);
  if (picked.count === 0) return { status: 'none', reason: `no SPF record at ${domain}` };
  if (picked.count > 1) return { status: 'permerror', reason: `${domain} publishes ${picked.count} SPF records` };
  const text = picked.text as string;
  const parsed = picked.parsed as SpfRecord | SpfSyntaxError;
  if (parsed instanceof SpfSyntaxError) return { status: 'permerror', text, reason: `syntax error in the SPF record of ${domain}: ${parsed.message}` };
  return { status: 'found', text, record: parsed };
}

interface PickedRecord {
  count: number;
  text?: string;
  parsed?: SpfRecord | SpfSyntaxError;
}

/**
 * A caching resolver hands back the same answer object on every hit, so the selection and the
 * parse are remembered per answer: a warm evaluation neither joins strings nor parses again.
 */
const picks = new WeakMap<string[][], PickedRecord>();

function pickSpfRecord(txt: string[][]): PickedRecord {
  const hit = picks.get(txt);
  if (hit) return hit;
  let text: string | undefined;
  let count = 0;
  for (const strings of txt) {
    const joined = strings.length === 1 ? strings[0] : strings.join('');
    if (!isSpfRecord(joined)) continue;
    count++;
    text ??= joined;
  }
  const picked: PickedRecord = count === 1 ? { count, text, parsed: parseRecordCached(text as string) } : { count };
  picks.set(txt, picked);
  return picked;
}

