/**
 * The sos-milter application: wires the policy to the milter protocol. Every message goes
 * through the same four steps as `sos-milter check`: collect (sender at MAIL, next hops at
 * RCPT, queue id and client at end of message) → assess (started at MAIL, awaited at end of
 * message) → decide → report (here: log lines, metrics and the milter verdict).
 */
import { isIP } from 'node:net';
import type { Logger } from '../log/index.js';
import { errorMessage, messageLogger } from '../log/index.js';
import { Verdict, type EndReason, type MilterApplication, type MilterContext } from '../milter/index.js';
import type { SosMetrics } from '../ops/metrics.js';
import type { DmarcParts } from '../app/policy-parts.js';
import { MAX_FROM_OCTETS, parseFromHeader } from '../dmarc/index.js';
import { AbortControllers, Deadlines } from './cancellation.js';
import {
  assessSender,
  decideOutcome,
  failOpen,
  newMessageId,
  parseEnvelopeSender,
  RecipientHops,
  spfSender,
  violationSentence,
  type DecisionSettings,
  type EnvelopeSender,
  type IgnoredNextHops,
  type JudgedAssessment,
  type MessageFacts,
  type Outcome,
  type OwnDomainPort,
  type PolicySettings,
  type RewriteSettings,
  type SpfPort,
  assessDmarc,
  assessDmarcNow,
  decideDmarc,
  dkimInput,
  dkimSigningDomain,
  dmarcFromDomain,
  ldapDkimFor,
  ldapDkimNow,
  dmarcViolationSentence,
  MAX_DKIM_FIELDS,
  type DmarcInput,
  type DmarcJudgement,
  type DmarcOutcome,
  type FromField,
  type LdapDkim,
} from '../policy/index.js';

/** DMARC_CHECK=on: what the prospective DMARC judgement needs (src/app/policy-parts.ts builds it). */
export type SosDmarcOptions = Omit<DmarcParts, 'psl' | 'ldapSigningDomains'> & { psl?: DmarcParts['psl']; ldapSigningDomains?: boolean };

/** The DMARC sentence of a violation, for the log. */
function sentenceOf(judged: DmarcJudgement): string {
  return judged.kind === 'violation' ? dmarcViolationSentence(judged) : judged.reason;
}

export interface SosAppOptions {
  settings: PolicySettings;
  milterName: string;
  rejectMessage: string;
  tmpfailMessage: string;
  ignoredNextHops: IgnoredNextHops;
  spf: SpfPort;
  ownDomains?: OwnDomainPort;
  logger: Logger;
  metrics?: SosMetrics;
  /** Upper bound for one message's SPF (and LDAP) work; past it the message fails open. */
  assessmentTimeoutMs: number;
  /** Rewrite mode (MILTER_MODE=rewrite): the SRS rewriter, SRS_REWRITE and the header. */
  rewrite?: RewriteSettings;
  /** Set when DMARC_CHECK=on: the From: field is read (headers negotiated, never the body). */
  dmarc?: SosDmarcOptions | undefined;
}

const CONTINUE = Verdict.continue();
const STATE_KEY = 'sos';

/** One message, from MAIL to end of message or ABORT: the one object allocated per message. */
class MessageState {
  readonly id = newMessageId();
  /** performance.now() at MAIL. */
  readonly startedAt = performance.now();
  readonly recipients = new RecipientHops();
  /** The assessment, once settled (by the work, the deadline or the MTA giving up). */
  judged: JudgedAssessment | undefined;
  /** End of message came before the assessment settled and waits for it here. */
  whenJudged: ((assessment: JudgedAssessment) => void) | undefined;
  /** Cancels the assessment's work at its deadline or when the MTA abandons the message; undefined once settled. */
  controller: AbortController | undefined;
  /** Why the message was abandoned (ABORT, connection closed by the MTA or by us), once it was. */
  abandoned: string | undefined;
  /** The MTA gave it up (ABORT, its close), as against the milter closing the connection. */
  abandonedByMta = false;
  /** DMARC_CHECK=on: From: fields seen, the first one's value (bounded), DKIM-Signature d= values. */
  fromFields = 0;
  fromValue: string | undefined;
  dkimDomains: string[] | undefined;
  /** Cancels the DMARC judgement's DNS work (end of message to verdict), while it runs. */
  dmarcController: AbortController | undefined;
  private logger: Logger | undefined;

  constructor(
    readonly sender: EnvelopeSender,
    private readonly root: Logger,
  ) {}

  /** Created on first use: most messages only log at end of message, with their queue id. */
  get log(): Logger {
    return (this.logger ??= messageLogger(this.root, this.id));
  }
}

function messageState(ctx: MilterContext): MessageState | undefined {
  return ctx.state[STATE_KEY] as MessageState | undefined;
}

/** An IP address as text, without Postfix's `IPv6:` prefix; undefined when it is none. */
function bareIp(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const bare = text.replace(/^IPv6:/i, '');
  return isIP(bare) ? bare : undefined;
}

/** The client address from {client_addr} or the connect information. */
function clientAddress(ctx: MilterContext): string | undefined {
  const fromMacro = bareIp(ctx.macro('client_addr'));
  if (fromMacro) return fromMacro;
  const info = ctx.connection;
  if (info && (info.family === 'inet' || info.family === 'inet6')) return bareIp(info.address);
  if (info && info.family === 'local' && info.address) return info.address;
  return undefined;
}

function elapsedMs(since: number): number {
  return performance.now() - since;
}

/** Since MAIL, in ms to the microsecond, for the log. */
function latencyMs(state: MessageState): number {
  return Math.round(elapsedMs(state.startedAt) * 1000) / 1000;
}

/** Who closed the connection under a message, in words for its log line. */
function closeCause(reason: EndReason): string {
  switch (reason) {
    case 'eof':
    case 'quit':
      return 'connection closed by the MTA';
    case 'error':
      return 'connection lost (socket error)';
    case 'shutdown':
      return 'connection closed by the milter at the shutdown drain deadline (SHUTDOWN_TIMEOUT_MS)';
    case 'timeout':
      return 'connection closed by the milter (idle timeout)';
    case 'protocol-error':
      return 'connection closed by the milter (protocol error)';
    case 'limit':
      return 'connection closed by the milter (a connection limit was exceeded)';
  }
}

export function createSosMilterApp(opts: SosAppOptions): MilterApplication {
  const { settings, logger, metrics } = opts;
  const deps = { spf: opts.spf, ownDomains: opts.ownDomains };
  const decision: DecisionSettings = {
    mode: settings.mode,
    ignoredNextHops: opts.ignoredNextHops,
    milterName: opts.milterName,
    rejectMessage: opts.rejectMessage,
    rewrite: opts.rewrite,
  };
  if (settings.mode === 'rewrite' && !opts.rewrite) throw new Error('rewrite mode needs the SRS rewriter (options.rewrite)');

  const dmarcDecision = opts.dmarc && { mode: settings.mode, milterName: opts.milterName, rejectMessage: opts.dmarc.rejectMessage };

  const controllers = new AbortControllers();
  const deadlines = new Deadlines<MessageState>(
    opts.assessmentTimeoutMs,
    (state) => state.startedAt,
    (state) => cancel(state, `no verdict within ${opts.assessmentTimeoutMs} ms`),
  );

  /** Settles the message's assessment, once. */
  function settle(state: MessageState, assessment: JudgedAssessment): void {
    if (state.judged) return;
    state.judged = assessment;
    const { controller, whenJudged } = state;
    state.controller = undefined;
    deadlines.delete(state);
    // Settled, the assessment listens to the signal no more: unless it fired, the controller is as good as new.
    if (controller) controllers.giveBack(controller);
    metrics?.decided(settings.check, elapsedMs(state.startedAt) / 1000);
    if (whenJudged) {
      state.whenJudged = undefined;
      whenJudged(assessment);
    }
  }

  /** Deadline or MTA gone: the assessment settles as fail-open (assessSender's rule) and the work behind it is told to stop. */
  function cancel(state: MessageState, why: string): void {
    state.controller?.abort(why);
    state.dmarcController?.abort(why);
  }

  /** Assess: started at MAIL so that DNS never holds up the MAIL reply; bounded by the deadline. */
  function assess(state: MessageState, sender: { address: string; domain: string }, helo: string): void {
    const input = { sender: spfSender(sender), domain: sender.domain, helo };
    const controller = controllers.take();
    const run = assessSender(input, deps, settings, { signal: controller.signal });
    // Usually every answer is cached: judged now, with no promise and no deadline.
    if (!(run instanceof Promise)) {
      controllers.giveBack(controller);
      settle(state, run);
      return;
    }
    state.controller = controller;
    deadlines.add(state);
    run.then(
      (judged) => settle(state, judged),
      (err: unknown) => {
        state.log.error({ err }, 'SPF assessment failed unexpectedly');
        // Work may still run behind the failure: stop it; a fired controller is not reused.
        controller.abort('assessment failed');
        settle(state, failOpen(sender.domain, settings.check, `internal error: ${errorMessage(err)}`));
      },
    );
  }

  /** Decide and report, once the assessment has settled. */
  function conclude(ctx: MilterContext, state: MessageState, domain: string, facts: MessageFacts, assessment: JudgedAssessment): Verdict | Promise<Verdict> {
    if (state.abandoned !== undefined) return reportAbandoned(state, domain, state.abandoned);
    const outcome = decideOutcome(assessment, facts, decision, state.id);
    const dmarc = opts.dmarc;
    // An SPF refusal or deferral stands; otherwise the DMARC judgement may add its own, reported
    // on the same `judged` line (one line per message, as without DMARC).
    if (!dmarc || outcome.action === 'reject' || outcome.action === 'tempfail') return report(ctx, state, facts, assessment, outcome);
    // Usually every DNS answer (and the From: domain's LDAP answer) is cached: judged now, without a promise, timer or controller.
    const rewritten = outcome.action === 'rewrite';
    const from = fromField(state);
    // LDAP_DKIM_ATTRIBUTE: the From: domain's own-domain lookup (the same cache as the MAIL FROM domain's: no second search for the same domain).
    const ldapPort = dmarc.ldapSigningDomains ? opts.ownDomains : undefined;
    const ldapDomain = ldapPort && dmarcFromDomain(from);
    const ldap = ldapPort && ldapDomain ? ldapDkimNow(ldapPort, ldapDomain) : undefined;
    if (!ldapPort || !ldapDomain || ldap) {
      const now = assessDmarcNow(dmarcInput(state, from, assessment, dmarc, rewritten, ldap), dmarc.resolver, { psl: dmarc.psl });
      if (now) return report(ctx, state, facts, assessment, outcome, now);
    }
    const ldapLookup = ldap ?? (ldapPort && ldapDomain ? ldapDkimFor(ldapPort, ldapDomain) : undefined);
    return judgeDmarcFor(state, from, assessment, dmarc, rewritten, ldapLookup).then((judged) => {
      if (state.abandoned !== undefined) return reportAbandoned(state, domain, state.abandoned);
      return report(ctx, state, facts, assessment, outcome, judged);
    });
  }

  function fromField(state: MessageState): FromField {
    if (state.fromFields === 0) return { kind: 'missing' };
    if (state.fromFields > 1) return { kind: 'several-fields', count: state.fromFields };
    return state.fromValue === undefined ? { kind: 'invalid', reason: `From: longer than ${MAX_FROM_OCTETS} octets` } : parseFromHeader(state.fromValue);
  }

  /** What the DMARC judgement is made of: the From: field, the envelope, SPF, the signing domains (with the From: domain's LDAP answer). */
  function dmarcInput(state: MessageState, from: FromField, spf: JudgedAssessment, dmarc: SosDmarcOptions, envelopeRewritten: boolean, ldap: LdapDkim | undefined): DmarcInput {
    const mailFromDomain = state.sender.kind === 'domain' ? state.sender.domain : undefined;
    return { from, mailFromDomain, spf, ...dkimInput(dmarc.signingDomains, from, state.dkimDomains, ldap), envelopeRewritten };
  }

  /**
   * The prospective DMARC judgement (src/policy/dmarc.ts). Bounded like the SPF assessment, and
   * cancelled with the message when the MTA gives it up (abort, disconnect); the From: domain's
   * LDAP lookup before it is bounded by LDAP_TIMEOUT_MS.
   */
  async function judgeDmarcFor(
    state: MessageState,
    from: FromField,
    spf: JudgedAssessment,
    dmarc: SosDmarcOptions,
    envelopeRewritten: boolean,
    ldapLookup: LdapDkim | Promise<LdapDkim> | undefined,
  ): Promise<DmarcJudgement> {
    // The LDAP lookup is bounded by LDAP_TIMEOUT_MS and never throws (a failure is an answer).
    const ldap = await ldapLookup;
    if (state.abandoned !== undefined) return { kind: 'unknown', domain: '', reason: state.abandoned };
    const input = dmarcInput(state, from, spf, dmarc, envelopeRewritten, ldap);
    const controller = new AbortController();
    state.dmarcController = controller;
    const timer = setTimeout(() => controller.abort(`no DMARC judgement within ${opts.assessmentTimeoutMs} ms`), opts.assessmentTimeoutMs);
    try {
      return await assessDmarc(input, dmarc.resolver, { signal: controller.signal, psl: dmarc.psl });
    } catch (err) {
      return { kind: 'unknown', domain: input.from.kind === 'one' ? input.from.domain : '', reason: `DMARC assessment failed: ${errorMessage(err)}` };
    } finally {
      clearTimeout(timer);
      state.dmarcController = undefined;
    }
  }

  /** The DMARC outcome's log line (a violation only: the rest is on the `judged` line) and header; its verdict. */
  function reportDmarc(ctx: MilterContext, log: Logger, facts: MessageFacts, judged: DmarcJudgement, outcome: DmarcOutcome): Verdict {
    switch (outcome.action) {
      case 'none':
      case 'pass':
        return CONTINUE;
      case 'pass-ignored-next-hop':
        log.info({ dmarc: 'violation', dmarcReason: judged.reason }, `${sentenceOf(judged)} Passing message due to ignored next-hop=${facts.recipients.toString()}`);
        return CONTINUE;
      case 'reject':
        log.warn({ dmarc: 'violation', dmarcReason: judged.reason, action: 'reject' }, `mode=reject client=${facts.client} ${sentenceOf(judged)}`);
        return Verdict.reply(550, '5.7.1', outcome.rejectText);
      case 'tag':
        log.info({ dmarc: 'violation', dmarcReason: judged.reason, action: 'tag' }, `mode=${settings.mode} client=${facts.client} ${sentenceOf(judged)}`);
        ctx.addHeader(outcome.header.name, outcome.header.value);
        return CONTINUE;
      case 'warn':
        log.warn({ dmarc: 'violation', dmarcReason: judged.reason, action: 'warn' }, `mode=${settings.mode} client=${facts.client} ${sentenceOf(judged)}`);
        return CONTINUE;
    }
  }

  /** Report: the log lines users and log-based metrics rely on, the counters, and the verdict. */
  function report(ctx: MilterContext, state: MessageState, facts: MessageFacts, assessment: JudgedAssessment, outcome: Outcome, dmarcJudged?: DmarcJudgement): Verdict {
    const log = facts.queueId ? messageLogger(logger, state.id, facts.queueId) : state.log;
    if (outcome.action === 'tempfail' && outcome.cause === 'local-fault') {
      log.error(
        { domain: assessment.domain, result: assessment.result, reason: assessment.reason, client: facts.client, latencyMs: latencyMs(state) },
        `SPF policy of 5321_from_domain=${assessment.domain} could not be judged for want of a local resource (too many open files): message deferred with 451 4.3.0, not passed unjudged`,
      );
      metrics?.judged({ action: 'tempfail', check: assessment.check, ownership: assessment.ownership, result: assessment.result });
      return Verdict.reply(451, '4.3.0', opts.tmpfailMessage);
    }
    if (outcome.action === 'tempfail') {
      log.error(outcome.reason);
      metrics?.judged({ action: 'tempfail', check: settings.check, ownership: 'not-asked' });
      return Verdict.reply(450, '4.7.1', opts.tmpfailMessage);
    }
    const { domain } = assessment;
    if (assessment.kind === 'fail-open') {
      log.warn({ domain, result: assessment.result, reason: assessment.reason }, `SPF policy of 5321_from_domain=${domain} not judged (fail open): ${assessment.reason}`);
      metrics?.failedOpen(assessment.localFault ? 'local_fault' : assessment.result);
    }
    // An LDAP failure is the directory's to report (one warning per outage, src/ldap/outage-log.ts):
    // a warning per message would flood the log at the rate of the mail. The judged line says own=unknown and why.
    if (assessment.kind === 'violation') {
      if (assessment.ownership === 'own') log.info(`5321_from_domain=${domain} (LDAP) has a broken SPF-record!`);
      if (outcome.action === 'pass-ignored-next-hop') {
        log.info(`Passing message due to ignored next-hop=${facts.recipients.toString()}`);
      } else {
        const sentence = `mode=${settings.mode} client=${facts.client} ${violationSentence(assessment)}`;
        if (outcome.action === 'reject') log.warn(sentence);
        else if (outcome.action === 'rewrite') {
          // One line per rewrite, the violation's own: a separate line cost 1.36x reject mode's CPU per message (npm run bench -- --part rewrite).
          log.info({ sender: outcome.sender, srs: outcome.srsAddress }, `${sentence} Envelope sender rewritten.`);
        } else log.info(sentence);
        if (outcome.action === 'rewrite') {
          metrics?.srsRewritten(assessment.ownership);
        } else if (outcome.action === 'reject' && outcome.notRewritten) {
          log.warn(
            { sender: facts.sender, notRewritten: outcome.notRewritten.reason, detail: outcome.notRewritten.detail },
            `not rewritten (${outcome.notRewritten.reason}: ${outcome.notRewritten.detail}): rejected as in reject mode`,
          );
          metrics?.srsNotRewritten(outcome.notRewritten.reason);
        }
      }
    }
    // DMARC_CHECK=on: a DMARC refusal or mark is the message's action (SPF let it through to here).
    const dmarcOutcome = dmarcJudged && decideDmarc(dmarcJudged, facts, dmarcDecision!, state.id);
    const action = dmarcOutcome && (dmarcOutcome.action === 'reject' || dmarcOutcome.action === 'tag') ? dmarcOutcome.action : outcome.action;
    // Its sentence comes before the judged line, as the SPF violation's does.
    const dmarcVerdict = dmarcJudged && dmarcOutcome ? reportDmarc(ctx, log, facts, dmarcJudged, dmarcOutcome) : CONTINUE;
    log.info(
      {
        domain,
        own: assessment.ownership,
        ownError: assessment.ownershipError,
        record: assessment.record,
        recordDomain: assessment.recordDomain !== domain ? assessment.recordDomain : undefined,
        check: assessment.check,
        result: assessment.result,
        outbound: assessment.outbound?.map((o) => `${o.ip}=${o.result}`).join(','),
        action,
        reason: outcome.reason,
        dmarc: dmarcJudged?.kind,
        dmarcReason: dmarcJudged && dmarcJudged.kind !== 'pass' ? dmarcJudged.reason : undefined,
        client: facts.client,
        latencyMs: latencyMs(state),
      },
      'judged',
    );
    if (dmarcJudged) metrics?.dmarcJudged(dmarcJudged.kind);
    metrics?.judged({
      action,
      check: assessment.check,
      ownership: assessment.ownership,
      result: assessment.result,
      violation: assessment.kind === 'violation',
    });

    if (outcome.action === 'reject') return Verdict.reply(550, '5.7.1', outcome.rejectText);
    if (outcome.action === 'tag') ctx.addHeader(outcome.header.name, outcome.header.value);
    // A DMARC refusal stands before any envelope change.
    if (dmarcVerdict !== CONTINUE) return dmarcVerdict;
    if (outcome.action === 'rewrite') {
      // End of message is the only stage where CHGFROM is allowed; the ESMTP parameters of MAIL stay Postfix's.
      ctx.changeSender(`<${outcome.srsAddress}>`);
      ctx.addHeader(outcome.header.name, outcome.header.value);
    }
    return CONTINUE;
  }

  /** The message was given up while it was being judged (by the MTA, or at our drain deadline): nobody reads a verdict now. */
  function reportAbandoned(state: MessageState, domain: string, why: string): Verdict {
    const msg = state.abandonedByMta ? `abandoned by the MTA (${why}): no verdict given` : `${why}: no verdict given`;
    state.log.info({ domain, cause: why, latencyMs: latencyMs(state) }, msg);
    metrics?.judged({ action: 'abandoned', check: settings.check, ownership: 'not-asked' });
    return CONTINUE;
  }

  const app: MilterApplication = {
    actions: settings.mode === 'rewrite' ? ['ADDHDRS', 'CHGFROM'] : ['ADDHDRS'],
    // Requested lists replace Postfix's defaults per stage, so ask for everything used here.
    macros: {
      connect: ['{client_addr}'],
      envfrom: ['i', '{mail_addr}', '{auth_authen}'],
      envrcpt: ['i', '{rcpt_host}', '{rcpt_addr}'],
      eom: ['i'],
    },
    // Nothing is ever refused before end of message: the MTA need not wait for these answers.
    noReply: ['connect', 'helo', 'envfrom', 'envrcpt'],

    // Declared, so that CONNECT and HELO are sent: they carry the client address and %{h}.
    connect() {
      return CONTINUE;
    },

    helo() {
      return CONTINUE;
    },

    // Collect: the sender, and the assessment starts.
    envfrom(ctx, rawSender) {
      const sender = parseEnvelopeSender(rawSender);
      const state = new MessageState(sender, logger);
      ctx.state[STATE_KEY] = state;
      if (sender.kind === 'domain') {
        assess(state, sender, ctx.helo ?? '');
        if (logger.isLevelEnabled('debug')) state.log.debug({ sender: sender.address, domain: sender.domain }, '5321_from_domain=' + sender.domain);
      } else if (sender.kind === 'null') {
        if (logger.isLevelEnabled('debug')) state.log.debug('null sender (bounce/DSN): not judged');
      } else {
        state.log.info({ sender: sender.address, reason: sender.reason }, 'sender has no usable domain: not judged');
      }
      return CONTINUE;
    },

    // Collect: each recipient's next hop, bounded.
    envrcpt(ctx, recipient) {
      const state = messageState(ctx);
      if (!state) return CONTINUE;
      const hop = ctx.macro('rcpt_host');
      state.recipients.add(hop, opts.ignoredNextHops);
      // Once per message: a peer sending thousands of recipients must not make thousands of lines.
      if (hop === undefined && state.sender.kind === 'domain' && state.recipients.missing === 1) {
        state.log.warn({ rcpt: recipient }, 'could not retrieve milter-macro ({rcpt_host}); the next hop counts as not ignored');
      }
      return CONTINUE;
    },

    eom(ctx) {
      const state = messageState(ctx);
      // Not judged: said once at MAIL, nothing to add.
      if (!state || state.sender.kind !== 'domain') return CONTINUE;
      const { domain } = state.sender;
      const facts: MessageFacts = { queueId: ctx.macro('i'), client: clientAddress(ctx), recipients: state.recipients, sender: state.sender.address };
      // Usually settled by now (the MTA sends end of message after the client's DATA, long
      // after MAIL): answered at once, without a promise and a turn of the event loop.
      const { judged } = state;
      if (judged) return conclude(ctx, state, domain, facts, judged);
      return new Promise<JudgedAssessment>((resolve) => (state.whenJudged = resolve)).then((assessment) => conclude(ctx, state, domain, facts, assessment));
    },

    abort(ctx) {
      const state = messageState(ctx);
      // Only a sender with a domain has an assessment (started at MAIL) to cancel.
      if (state?.sender.kind !== 'domain') return;
      if (state.abandoned === undefined) {
        state.abandoned = 'aborted by the MTA';
        state.abandonedByMta = true;
      }
      cancel(state, 'aborted by the MTA');
      if (logger.isLevelEnabled('debug')) state.log.debug('message aborted by the MTA before end of message: assessment cancelled');
    },

    disconnect(ctx, reason) {
      const state = messageState(ctx);
      if (!state) return;
      const why = closeCause(reason);
      if (state.abandoned === undefined) {
        state.abandoned = why;
        state.abandonedByMta = reason === 'eof' || reason === 'quit';
      }
      cancel(state, why);
    },
  };
  if (opts.dmarc) {
    // Only with DMARC_CHECK=on are headers asked for (the body never is): From: and DKIM-Signature are kept, bounded.
    app.noReply = [...(app.noReply ?? []), 'header'];
    app.header = (ctx, name, value) => {
      const state = messageState(ctx);
      if (!state) return CONTINUE;
      const lower = name.toLowerCase();
      if (lower === 'from') {
        state.fromFields++;
        if (state.fromFields === 1) state.fromValue = value.length <= MAX_FROM_OCTETS ? value : undefined;
      } else if (lower === 'dkim-signature') {
        state.dkimDomains ??= [];
        // Past the bound a signature is not parsed at all (each may be 8 KiB of header).
        if (state.dkimDomains.length < MAX_DKIM_FIELDS) {
          const d = dkimSigningDomain(value);
          if (d) state.dkimDomains.push(d);
        }
      }
      return CONTINUE;
    };
  }
  return app;
}
