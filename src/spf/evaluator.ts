import { DnsError, type LookupResult, type RecordTypeMap, type Resolver, type RRType, type TxtRecord } from '../dns/types.js';
import { MAX_EXPLANATION_OCTETS, MAX_SPF_RECORD_OCTETS, recordOctets, startsSpfRecord, txtRecordCount } from '../dns/txt-bound.js';
import { errorMessage } from '../log/index.js';
import type {
  AMechanism,
  CheckHostInput,
  DnsMechanism,
  DnsQueryTrace,
  EffectiveRecord,
  EvaluationOptions,
  MacroString,
  MechanismTerm,
  MxMechanism,
  Qualifier,
  RecordSelection,
  SpfCheck,
  SpfRecord,
  SpfResult,
  SpfTrace,
  SpfTraceNode,
} from './types.js';
import {
  isQueryableName,
  isSameOrSubdomain,
  isValidIdentityDomain,
  normaliseIdentityDomain,
  stripTrailingDot,
  truncateName,
} from './domain.js';
import { EvaluationAbortedError, SpfInputError, SpfSyntaxError } from './errors.js';
import { type IpAddress, ipMacroValue, parseClientIp, parseIpv4, parseIpv6, reverseName, sameNetwork } from './ip.js';
import { type ExpansionBound, expandMacroString, type MacroValues, parseMacroString } from './macro.js';
import { EffectiveRecordMemo } from './effective-record-memo.js';
import { MemoResolver } from './memo-resolver.js';
import { parseRecordCached } from './record-cache.js';

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

/** Ends evaluation with permerror or temperror (RFC 7208 §4.6.4, §5, §6). Not the caller's abort. */
class Halt extends Error {
  constructor(
    readonly result: 'permerror' | 'temperror',
    readonly reason: string,
    /** temperror: a lookup failed for want of a local resource (see SpfCheck.localFault). */
    readonly localFault = false,
  ) {
    super(reason);
  }
}

/** Per check_host() state, shared by the includes and redirects it runs. */
interface Check {
  resolver: Resolver;
  signal: AbortSignal | undefined;
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
  localFault?: boolean;
}

/** The mechanisms that cost one of the 10 DNS-querying terms (RFC 7208 §4.6.4; redirect= is counted where it is followed). */
function isDnsMechanism(m: MechanismTerm): m is DnsMechanism {
  return m.name !== 'all' && m.name !== 'ip4' && m.name !== 'ip6';
}

/** RFC 7208 §4.6.2: a matching mechanism's qualifier is the result. */
const QUALIFIER_RESULT: Record<Qualifier, SpfResult> = { '+': 'pass', '-': 'fail', '~': 'softfail', '?': 'neutral' };

export class SpfEvaluator {
  private readonly resolver: Resolver;
  private readonly limits: SpfLimits;
  private readonly defaultExplanation: MacroString;
  private readonly receiverHost: string;
  private readonly now: () => number;
  private readonly memo: EffectiveRecordMemo;
  /** The SPF record of each TXT answer this evaluator has read, by answer identity. */
  private readonly picks = new RecordPicks();

  constructor(opts: SpfEvaluatorOptions) {
    this.resolver = opts.resolver;
    this.memo = new EffectiveRecordMemo(opts.resolver);
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

  checkHost(input: CheckHostInput, options: EvaluationOptions = {}): Promise<SpfCheck> {
    return this.run(input, this.resolver, options.signal);
  }

  /**
   * check_host() for each of `ips` with the same sender and HELO, sharing DNS answers between
   * them. With a signal, abandoning it stops every evaluation of the batch: no new queries, the
   * pending ones are dropped (a query shared with other callers of the resolver goes on for them).
   */
  async checkHostForIps(sender: string, helo: string, ips: string[], options: EvaluationOptions = {}): Promise<Map<string, SpfCheck>> {
    for (const ip of ips) if (!parseClientIp(ip)) throw new SpfInputError(`not an IP address: '${ip}'`);
    const signal = options.signal;
    throwIfAborted(signal, sender);
    const shared = new MemoResolver(this.resolver);
    const out = new Map<string, SpfCheck>();
    // Evaluate a few at a time: answers are shared through the memo, and a long list of
    // relays must not turn into a burst of parallel upstream queries.
    const queue = [...new Set(ips)];
    const worker = async () => {
      for (let ip = queue.shift(); ip !== undefined; ip = queue.shift()) {
        out.set(ip, await this.run({ ip, sender, helo }, shared, signal));
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
    const ordered = new Map<string, SpfCheck>();
    for (const ip of ips) {
      const check = out.get(ip);
      if (check) ordered.set(ip, check);
    }
    return ordered;
  }

  /**
   * The record that decides for `domain` whatever the client: its own, or the one its redirect=
   * chain ends at when it has no `all` (RFC 7208 §6.1). Redirect targets that depend on the
   * client (macros other than s, l, o, d) make it undecidable: permerror.
   */
  effectiveRecord(domain: string, options: EvaluationOptions = {}): Promise<EffectiveRecord> {
    const signal = options.signal;
    try {
      throwIfAborted(signal, domain);
    } catch (e) {
      return Promise.reject(e);
    }
    const chain: { domain: string; text?: string }[] = [];
    const normalised = normaliseIdentityDomain(domain);
    if (normalised === null || !isValidIdentityDomain(normalised)) {
      return Promise.resolve({ status: 'none', domain, chain: [{ domain }], reason: `'${domain}' is not a valid domain name` });
    }
    const remembered = this.memo.get(normalised);
    if (remembered) return Promise.resolve(remembered);
    // The answers read on the way; undefined once a step had none to remember (a failed lookup).
    let answers: LookupResult<TxtRecord>[] | undefined = this.memo.enabled ? [] : undefined;
    const finish = (effective: EffectiveRecord): { done: EffectiveRecord } => {
      if (answers) this.memo.remember(normalised, effective, answers);
      return { done: effective };
    };
    // Not async, nor is the visitor: nothing here waits but the walker (a promise and a turn
    // of the microtask queue less per hop; the regex check makes one such walk per message).
    return this.walkRedirects<EffectiveRecord>(this.resolver, signal, normalised, undefined, (current, sel, hops) => {
      chain.push(sel.text === undefined ? { domain: current } : { domain: current, text: sel.text });
      if (sel.answer) answers?.push(sel.answer);
      else answers = undefined;
      if (sel.status !== 'found') {
        const effective: EffectiveRecord = { status: sel.status, domain: current, text: sel.text, chain, reason: sel.reason };
        if (sel.localFault) effective.localFault = true;
        return finish(effective);
      }
      const { record } = sel;
      if (record.hasAll || !record.redirect) {
        const reason = hops === 0 ? `SPF record of ${current}` : `SPF record of ${current}, reached by ${hops} redirect(s)`;
        return finish({ status: 'found', domain: current, text: sel.text, record, chain, reason });
      }
      const permerror = (reason: string) => finish({ status: 'permerror', domain: current, text: sel.text, chain, reason });
      if (hops + 1 > this.limits.dnsMechanisms) return permerror(`more than ${this.limits.dnsMechanisms} redirects`);
      const spec = record.redirect.value;
      const clientLetter = spec.tokens.find((t) => t.kind === 'macro' && !'slod'.includes(t.letter));
      if (clientLetter && clientLetter.kind === 'macro') {
        return permerror(`redirect target '${spec.text}' depends on the connection (%{${clientLetter.letter}})`);
      }
      const values = { ...EMPTY_VALUES, s: `postmaster@${normalised}`, l: 'postmaster', o: normalised, d: current };
      return { redirect: truncateName(stripTrailingDot(expandMacroString(spec, values))) };
    });
  }

  /**
   * effectiveRecord's answer when it is known without waiting: every DNS answer behind it is
   * still cached. Undefined otherwise (then ask effectiveRecord). Callers must not mutate it.
   */
  effectiveRecordNow(domain: string): EffectiveRecord | undefined {
    const normalised = normaliseIdentityDomain(domain);
    return normalised === null ? undefined : this.memo.get(normalised);
  }

  /**
   * The one redirect walker (RFC 7208 §6.1): selects the record of each domain on the chain and
   * lets `visit` either decide there or name the redirect target. The walker owns the rules
   * common to every reader of a chain: a target that is not a domain name, a loop, and a target
   * without an SPF record are permerrors (handed to `visit` as such a selection).
   */
  private async walkRedirects<R>(
    resolver: Resolver,
    signal: AbortSignal | undefined,
    start: string,
    log: ((q: DnsQueryTrace) => void) | undefined,
    visit: (domain: string, sel: RecordSelection, hops: number) => { done: R } | { redirect: string } | Promise<{ done: R } | { redirect: string }>,
  ): Promise<R> {
    // Only a chain that redirects needs to remember where it has been.
    let seen: Set<string> | undefined;
    let current = start;
    let sel = await selectRecord(resolver, current, log, signal, this.picks);
    for (let hops = 0; ; hops++) {
      const step = await visit(current, sel, hops);
      if ('done' in step) return step.done;
      (seen ??= new Set()).add(current.toLowerCase());
      const from = current;
      current = step.redirect;
      if (!isQueryableName(current)) {
        sel = { status: 'permerror', reason: `redirect target '${current}' in ${from} is not a valid domain name` };
      } else if (seen.has(current.toLowerCase())) {
        sel = { status: 'permerror', reason: 'redirect loop' };
      } else {
        sel = await selectRecord(resolver, current, log, signal, this.picks);
        if (sel.status === 'none') sel = { status: 'permerror', reason: `redirect target ${current} (from ${from}) has no SPF record` };
      }
    }
  }

  /** check_host() (RFC 7208 §4): <ip>, <domain>, <sender>; §4.3 initial processing first. */
  private async run(input: CheckHostInput, resolver: Resolver, signal: AbortSignal | undefined): Promise<SpfCheck> {
    throwIfAborted(signal, input.sender);
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
      if (o.localFault) return { result: o.result, reason: o.reason, trace, localFault: true };
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
    const check: Check = { resolver, signal, ip, values, trace };
    const root: SpfTraceNode = { domain, via: 'check_host', children: [] };
    trace.root = root;
    try {
      return finish(await this.evalDomain(check, domain, root, true));
    } catch (e) {
      if (e instanceof Halt) return finish({ result: e.result, reason: e.reason, localFault: e.localFault });
      if (e instanceof EvaluationAbortedError) throw e;
      // No other exception escapes: an unexpected failure (e.g. a resolver bug) is a temporary error.
      return finish({ result: 'temperror', reason: `internal error: ${errorMessage(e)}` });
    }
  }

  /**
   * check_host() on one domain and its redirect= chain (RFC 7208 §4.6.2 first match wins, §4.7
   * neutral when nothing matches, §6.1 redirect=); throws Halt for permerror/temperror.
   */
  private async evalDomain(c: Check, domain: string, node: SpfTraceNode, wantExplanation: boolean): Promise<DomainOutcome> {
    // The trace nests one node per redirect under the node of the domain that redirected.
    const nodes: SpfTraceNode[] = [];
    let redirectTerm = '';
    try {
      const outcome = await this.walkRedirects<DomainOutcome>(c.resolver, c.signal, domain, (q) => c.trace.queries.push(q), async (current, sel, hops) => {
        let here = node;
        if (hops > 0) {
          here = { domain: current, via: 'redirect', term: redirectTerm, children: [] };
          nodes[nodes.length - 1].children.push(here);
        }
        nodes.push(here);
        if (sel.text !== undefined) here.record = sel.text;
        if (sel.status === 'none') return { done: { result: 'none', reason: sel.reason } };
        if (sel.status !== 'found') throw new Halt(sel.status, sel.reason, sel.localFault === true);
        const { record } = sel;
        for (const mech of record.mechanisms) {
          if (isDnsMechanism(mech)) this.countDnsTerm(c, mech.text, current);
          if (!(await this.matches(c, current, mech, here))) continue;
          const result = QUALIFIER_RESULT[mech.qualifier];
          here.matched = mech.text;
          const outcome: DomainOutcome = {
            result,
            matched: { term: mech.text, domain: current },
            reason: `'${mech.text}' in the SPF record of ${current} matched ${c.ip.text}`,
          };
          if (result === 'fail' && wantExplanation) await this.explain(c, current, record, outcome);
          return { done: outcome };
        }
        if (record.redirect && !record.hasAll) {
          redirectTerm = record.redirect.text;
          this.countDnsTerm(c, redirectTerm, current);
          here.matched = redirectTerm;
          return { redirect: await this.targetName(c, current, record.redirect.value) };
        }
        return { done: { result: 'neutral', reason: `no term in the SPF record of ${current} matched ${c.ip.text}; default result neutral` } };
      });
      let reason = outcome.reason;
      for (let i = nodes.length - 1; i >= 0; i--) {
        if (i < nodes.length - 1) reason = `${reason} (redirected from ${nodes[i].domain})`;
        nodes[i].result = outcome.result;
        nodes[i].reason = reason;
      }
      return { ...outcome, reason };
    } catch (e) {
      if (e instanceof Halt) {
        for (const n of nodes) {
          n.result = e.result;
          n.reason = e.reason;
        }
        if (nodes.length === 0) {
          node.result = e.result;
          node.reason = e.reason;
        }
      }
      throw e;
    }
  }

  /** RFC 7208 §4.6.4: more than `dnsMechanisms` (10) DNS-querying terms is permerror. */
  private countDnsTerm(c: Check, term: string, domain: string): void {
    c.trace.dnsTerms++;
    if (c.trace.dnsTerms > this.limits.dnsMechanisms) {
      throw new Halt('permerror', `more than ${this.limits.dnsMechanisms} DNS-querying terms (reached '${term}' in ${domain})`);
    }
  }

  /** Whether mechanism `m` of the record at `domain` matches the client (RFC 7208 §5). */
  private async matches(c: Check, domain: string, m: MechanismTerm, node: SpfTraceNode): Promise<boolean> {
    switch (m.name) {
      // §5.1
      case 'all':
        return true;
      // §5.6
      case 'ip4':
        return c.ip.family === 4 && sameNetwork(c.ip.bytes, m.networkBytes, m.cidr4);
      case 'ip6':
        return c.ip.family === 6 && sameNetwork(c.ip.bytes, m.networkBytes, m.cidr6);
      // §5.3
      case 'a': {
        const target = await this.targetName(c, domain, m.domainSpec);
        const addrs = await this.addresses(c, target, true);
        return addrs !== null && this.anyInNetwork(c, addrs, m);
      }
      // §5.4: more than 10 MX names is permerror; an exchange without addresses does not match.
      case 'mx': {
        const target = await this.targetName(c, domain, m.domainSpec);
        const mxs = (await this.query(c, target, 'MX', true)) ?? [];
        if (mxs.length > this.limits.mxNames) {
          throw new Halt('permerror', `'${m.text}' in ${domain}: ${target} has ${mxs.length} MX records (limit ${this.limits.mxNames})`);
        }
        for (const mx of mxs) {
          const addrs = await this.addresses(c, stripTrailingDot(mx.exchange), false);
          if (addrs !== null && this.anyInNetwork(c, addrs, m)) return true;
        }
        return false;
      }
      // §5.5
      case 'ptr': {
        const target = await this.targetName(c, domain, m.domainSpec);
        const names = await this.ptrNames(c, true);
        for (const name of names) {
          // Only names under the target can match, so only those are validated (RFC 7208 §5.5).
          if (isSameOrSubdomain(name, target) && (await this.validates(c, name))) return true;
        }
        return false;
      }
      // §5.7
      case 'exists': {
        const target = await this.targetName(c, domain, m.domainSpec);
        const found = await this.query(c, target, 'A', true);
        return found !== null && found.length > 0;
      }
      // §5.2: a pass matches; none is permerror; fail, softfail and neutral do not match.
      case 'include': {
        const target = await this.targetName(c, domain, m.domainSpec);
        const child: SpfTraceNode = { domain: target, via: 'include', term: m.text, children: [] };
        node.children.push(child);
        const outcome = await this.evalDomain(c, target, child, false);
        if (outcome.result === 'none') throw new Halt('permerror', `'${m.text}' in ${domain}: ${target} has no SPF record`);
        return outcome.result === 'pass';
      }
    }
  }

  /** a, mx: whether the client is in the network of one of `addrs` under the dual-cidr-length (RFC 7208 §5.6). */
  private anyInNetwork(c: Check, addrs: string[], m: AMechanism | MxMechanism): boolean {
    const bits = c.ip.family === 4 ? m.cidr4 : m.cidr6;
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
      if (e instanceof Halt && e.result === 'temperror') return [];
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
      if (e instanceof Halt && e.result === 'temperror') return false;
      throw e;
    }
  }

  /** %{p} (RFC 7208 §7.3): a validated name of the client, preferring <domain> itself, then a subdomain of it. */
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

  /** Macro expansion (RFC 7208 §7.3) with %{d} the current domain. */
  private async expand(c: Check, domain: string, ms: MacroString, bound: ExpansionBound = 'domain'): Promise<string> {
    if (!ms.hasMacros) return expandMacroString(ms, c.values, bound);
    const values = { ...c.values, d: domain };
    if (ms.usesPtr) values.p = await this.validatedName(c, domain);
    return expandMacroString(ms, values, bound);
  }

  /** The <target-name> of a term (RFC 7208 §4.8): its expanded domain-spec, or the current domain. */
  private async targetName(c: Check, domain: string, spec: MacroString | undefined): Promise<string> {
    if (!spec) return domain;
    return truncateName(stripTrailingDot(await this.expand(c, domain, spec)));
  }

  /**
   * One logical lookup. Returns null (and asks nothing) for names no resolver can send: "no
   * match", never an error. Temporary DNS errors abort with temperror; callers that must skip
   * them catch that. Void answers count against the limit when `countVoid` (RFC 7208 §4.6.4).
   */
  private async query<T extends RRType>(c: Check, name: string, type: T, countVoid: boolean): Promise<RecordTypeMap[T][] | null> {
    const answer = await this.answer(c, name, type, countVoid);
    return answer === null ? null : answer.records;
  }

  private async answer<T extends RRType>(c: Check, name: string, type: T, countVoid: boolean): Promise<LookupResult<RecordTypeMap[T]> | null> {
    const entry: DnsQueryTrace = { name, type, outcome: 'answer', answers: 0, void: false };
    c.trace.queries.push(entry);
    if (!isQueryableName(name)) {
      entry.outcome = 'badname';
      return null;
    }
    let answer: LookupResult<RecordTypeMap[T]>;
    try {
      throwIfAborted(c.signal, name);
      answer = await c.resolver.lookup(name, type, { signal: c.signal });
    } catch (e) {
      const failure = lookupFailure(e, c.signal, name);
      if (failure === 'badname') {
        entry.outcome = 'badname';
        return null;
      }
      entry.outcome = 'error';
      entry.error = failure;
      throw new Halt('temperror', `DNS ${type} lookup of ${name} failed: ${entry.error}`, isLocalFault(e));
    }
    const records = answer.records;
    entry.answers = type === 'TXT' ? txtRecordCount(answer as LookupResult<TxtRecord>) : records.length;
    if (entry.answers === 0) {
      entry.outcome = answer.nxdomain ? 'nxdomain' : 'nodata';
      if (countVoid) {
        entry.void = true;
        c.trace.voidLookups++;
        if (c.trace.voidLookups > this.limits.voidLookups) {
          throw new Halt('permerror', `more than ${this.limits.voidLookups} void DNS lookups (${type} ${name} was ${entry.outcome})`);
        }
      }
    }
    return answer;
  }

  /**
   * RFC 7208 §6.2: the explanation for a fail. Any problem with exp= (DNS error, not exactly
   * one TXT record, bad syntax, longer than an SMTP reply line can carry: see txt-bound.ts)
   * falls back to the default; exp lookups are not void-counted.
   */
  private async explain(c: Check, domain: string, record: SpfRecord, outcome: DomainOutcome): Promise<void> {
    if (record.exp) {
      try {
        const target = await this.targetName(c, domain, record.exp.value);
        const txt = await this.answer(c, target, 'TXT', false);
        if (txt && txtRecordCount(txt) === 1 && txt.records.length === 1 && recordOctets(txt.records[0]) <= MAX_EXPLANATION_OCTETS) {
          const text = await this.expand(c, domain, parseMacroString(txt.records[0].join(''), 'explain'), 'explain');
          outcome.explanation = text;
          outcome.explanationSource = 'exp';
          return;
        }
      } catch (e) {
        if (!(e instanceof Halt || e instanceof SpfSyntaxError)) throw e;
      }
    }
    outcome.explanation = await this.expand(c, domain, this.defaultExplanation, 'explain');
    outcome.explanationSource = 'default';
  }
}

/** Throws EvaluationAbortedError once the caller's signal has fired: nothing new is asked after it. */
function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new EvaluationAbortedError(what, { cause: signal.reason });
}

/**
 * What a failed lookup means to the evaluator: 'badname' (a name no resolver can send: no
 * match), a DNS error code (temperror), or the caller's abort, thrown as EvaluationAbortedError.
 */
function lookupFailure(e: unknown, signal: AbortSignal | undefined, name: string): string {
  if (e instanceof EvaluationAbortedError) throw e;
  if ((e instanceof DnsError && e.code === 'ABORTED') || signal?.aborted) throw new EvaluationAbortedError(name, { cause: signal?.reason ?? e });
  if (e instanceof DnsError) return e.temporary ? e.code : 'badname';
  return String(e);
}

/** The lookup failed for want of a resource on this host (no file descriptor), not because of the name. */
function isLocalFault(e: unknown): boolean {
  return e instanceof DnsError && e.localFault;
}

/**
 * Addresses of an A/AAAA answer as octets, parsed on every read. Remembering them per answer
 * object saved 0.25-0.45 µs of CPU per evaluation of the bench/spf-bench.ts zone (three
 * one-address answers, tight loop) and 0.1-0.3 µs per warm checkHost end to end (median and
 * best of 10 interleaved runs, CPU time, load 3-6 on 2 cores): under the 1 µs per message a
 * speed trick must save to be kept (src/dns/cache.ts).
 */
function parsedAddresses(addrs: string[], family: 4 | 6): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const a of addrs) {
    const bytes = family === 4 ? parseIpv4(a) : parseIpv6(a);
    if (bytes) out.push(bytes);
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
 * more than one SPF record is permerror. A record longer than MAX_SPF_RECORD_OCTETS is a
 * permerror too (see txt-bound.ts: §3.4 lets verifiers ignore records beyond one UDP answer).
 * `picks`: where to remember the pick per answer; a new one (nothing shared) by default.
 */
export async function selectRecord(
  resolver: Resolver,
  domain: string,
  log: ((q: DnsQueryTrace) => void) | undefined,
  signal: AbortSignal | undefined,
  picks: RecordPicks = new RecordPicks(),
): Promise<RecordSelection> {
  const entry: DnsQueryTrace = { name: domain, type: 'TXT', outcome: 'answer', answers: 0, void: false };
  log?.(entry);
  if (!isQueryableName(domain)) {
    entry.outcome = 'badname';
    return { status: 'none', reason: `'${domain}' is not a valid domain name` };
  }
  let answer: LookupResult<TxtRecord>;
  try {
    throwIfAborted(signal, domain);
    answer = await resolver.lookup(domain, 'TXT', { signal });
  } catch (e) {
    const failure = lookupFailure(e, signal, domain);
    if (failure === 'badname') {
      entry.outcome = 'badname';
      return { status: 'none', reason: `'${domain}' cannot be looked up (${e instanceof DnsError ? e.code : failure})` };
    }
    entry.outcome = 'error';
    entry.error = failure;
    const reason = `DNS TXT lookup of ${domain} failed: ${entry.error}`;
    return isLocalFault(e) ? { status: 'temperror', reason, localFault: true } : { status: 'temperror', reason };
  }
  entry.answers = txtRecordCount(answer);
  if (entry.answers === 0) entry.outcome = answer.nxdomain ? 'nxdomain' : 'nodata';
  const picked = picks.pick(answer.records);
  const count = picked.count + (answer.omitted?.spf ?? 0);
  if (count === 0) return { status: 'none', reason: `no SPF record at ${domain}`, answer };
  if (count > 1) return { status: 'permerror', reason: `${domain} publishes ${count} SPF records`, answer };
  if (picked.text === undefined) {
    return { status: 'permerror', reason: `the SPF record of ${domain} is longer than the ${MAX_SPF_RECORD_OCTETS} octets this verifier reads (RFC 7208 §3.4)`, answer };
  }
  const { text, parsed } = picked;
  if (parsed instanceof SpfSyntaxError) return { status: 'permerror', text, reason: `syntax error in the SPF record of ${domain}: ${parsed.message}`, answer };
  return { status: 'found', text, record: parsed, answer };
}

/**
 * SPF records in a TXT answer, oversized ones included; and the record's text and parse when
 * there is exactly one and it is within the size bound.
 */
type PickedRecord = { count: number; text?: undefined } | { count: number; text: string; parsed: SpfRecord | SpfSyntaxError };

/**
 * The SPF record of each TXT answer, picked and parsed once per answer object: a warm
 * evaluation neither joins strings nor looks the parse up again. It relies on the Resolver's
 * identity contract (src/dns/types.ts): a cached answer is the same object on every hit and
 * never changes. Weakly keyed, so an entry goes with the answer the resolver drops.
 * With the bench/spf-bench.ts zone (six TXT answers per evaluation) it saves 1.4-2 µs of CPU
 * per warm checkHost and about 6 µs per three-relay checkHostForIps (13.2 vs 15.2 and 51.5 vs
 * 57.5 µs, median of 10 interleaved runs, load 3-6 on 2 cores).
 */
export class RecordPicks {
  private readonly picks = new WeakMap<TxtRecord[], PickedRecord>();

  pick(txt: TxtRecord[]): PickedRecord {
    const hit = this.picks.get(txt);
    if (hit) return hit;
    let only: TxtRecord | undefined;
    let count = 0;
    for (const strings of txt) {
      if (!startsSpfRecord(strings)) continue;
      count++;
      only = strings;
    }
    let picked: PickedRecord = { count };
    if (count === 1 && only !== undefined && recordOctets(only) <= MAX_SPF_RECORD_OCTETS) {
      const text = only.join('');
      picked = { count, text, parsed: parseRecordCached(text) };
    }
    this.picks.set(txt, picked);
    return picked;
  }
}
