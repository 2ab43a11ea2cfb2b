/**
 * The sos-milter application: wires the policy to the milter protocol. The policy decides
 * from plain values; this file only collects them from the MTA (sender, client address,
 * next hops, queue id) and turns the outcome back into a milter verdict.
 */
import { isIP } from 'node:net';
import type { Logger } from '../log/index.js';
import { messageLogger } from '../log/index.js';
import { Verdict, type MilterApplication, type MilterContext } from '../milter/index.js';
import type { SosMetrics } from '../ops/metrics.js';
import {
  assessSender,
  decideOutcome,
  newMessageId,
  parseEnvelopeSender,
  violationSentence,
  type Assessment,
  type EnvelopeSender,
  type IgnoredNextHops,
  type OwnDomainPort,
  type PolicySettings,
  type SpfPort,
} from '../policy/index.js';

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
}

/** Per-message values, kept in the library's per-message state bag. */
interface MessageState {
  id: string;
  sender: EnvelopeSender;
  startedAt: bigint;
  /** {rcpt_host} of every recipient, undefined where the macro was missing. */
  nextHops: (string | undefined)[];
  assessment?: Promise<Assessment>;
  /** Created on first use: a pino child costs microseconds, and most messages only log at end of message. */
  readonly log: Logger;
}

const STATE_KEY = 'sos';

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
export function clientAddress(ctx: MilterContext): string | undefined {
  const fromMacro = bareIp(ctx.macro('client_addr'));
  if (fromMacro) return fromMacro;
  const info = ctx.connection;
  if (info && (info.family === 'inet' || info.family === 'inet6')) return bareIp(info.address);
  if (info && info.family === 'local' && info.address) return info.address;
  return undefined;
}

function failOpenAssessment(domain: string, check: PolicySettings['check'], reason: string): Assessment {
  return { domain, check, ownership: 'not-asked', result: 'temperror', violation: false, failOpen: true, detail: 'temperror', reason };
}

function elapsedMs(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

export function createSosMilterApp(opts: SosAppOptions): MilterApplication {
  const { settings, logger, metrics } = opts;

  function startAssessment(state: MessageState, domain: string, sender: string, helo: string): Promise<Assessment> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Assessment>((resolve) => {
      timer = setTimeout(
        () => resolve(failOpenAssessment(domain, settings.check, `no verdict within ${opts.assessmentTimeoutMs} ms`)),
        opts.assessmentTimeoutMs,
      );
      timer.unref();
    });
    const work = assessSender({ sender, domain, helo }, { spf: opts.spf, ownDomains: opts.ownDomains }, settings).catch(
      (err: unknown) => {
        state.log.error({ err }, 'SPF assessment failed unexpectedly');
        return failOpenAssessment(domain, settings.check, `internal error: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
    return Promise.race([work, deadline]).finally(() => {
      clearTimeout(timer);
      metrics?.decided(settings.check, elapsedMs(state.startedAt) / 1000);
    });
  }

  return {
    actions: ['ADDHDRS'],
    // Requested lists replace Postfix's defaults per stage, so ask for everything used here.
    macros: {
      connect: ['{client_addr}'],
      envfrom: ['i', '{mail_addr}', '{auth_authen}'],
      envrcpt: ['i', '{rcpt_host}', '{rcpt_addr}'],
      eom: ['i'],
    },
    // Nothing is ever refused before end of message: the MTA need not wait for these answers.
    noReply: ['connect', 'helo', 'envfrom', 'envrcpt'],

    connect() {
      return Verdict.continue();
    },

    helo() {
      return Verdict.continue();
    },

    envfrom(ctx, rawSender) {
      const id = newMessageId();
      const sender = parseEnvelopeSender(rawSender);
      let log: Logger | undefined;
      const state: MessageState = {
        id,
        sender,
        startedAt: process.hrtime.bigint(),
        nextHops: [],
        get log() {
          return (log ??= messageLogger(logger, id));
        },
      };
      ctx.state[STATE_KEY] = state;
      if (sender.kind === 'domain') {
        // Started now, awaited at end of message: DNS never holds up the MAIL reply.
        state.assessment = startAssessment(state, sender.domain, sender.address, ctx.helo ?? '');
        if (logger.isLevelEnabled('debug')) state.log.debug({ sender: sender.address, domain: sender.domain }, '5321_from_domain=' + sender.domain);
      } else if (sender.kind === 'null') {
        if (logger.isLevelEnabled('debug')) state.log.debug('null sender (bounce/DSN): not judged');
      } else {
        state.log.info({ sender: sender.address, reason: sender.reason }, 'sender has no usable domain: not judged');
      }
      return Verdict.continue();
    },

    envrcpt(ctx, recipient) {
      const state = messageState(ctx);
      if (!state) return Verdict.continue();
      const hop = ctx.macro('rcpt_host');
      state.nextHops.push(hop);
      if (hop === undefined && state.sender.kind === 'domain') {
        state.log.warn({ rcpt: recipient }, 'could not retrieve milter-macro ({rcpt_host}); the next hop counts as not ignored');
      }
      return Verdict.continue();
    },

    async eom(ctx) {
      const state = messageState(ctx);
      if (!state || state.sender.kind !== 'domain' || !state.assessment) return Verdict.continue();
      const queueId = ctx.macro('i');
      const log = queueId ? messageLogger(logger, state.id, queueId) : state.log;
      if (!queueId) {
        log.error('could not retrieve milter-macro (i): temporary failure');
        metrics?.judged({ action: 'tempfail', check: settings.check, ownership: 'not-asked' });
        return Verdict.reply(450, '4.7.1', opts.tmpfailMessage);
      }
      const client = clientAddress(ctx);
      if (!client) {
        log.error('no client address (neither connect information nor {client_addr}): temporary failure');
        metrics?.judged({ action: 'tempfail', check: settings.check, ownership: 'not-asked' });
        return Verdict.reply(450, '4.7.1', opts.tmpfailMessage);
      }

      const assessment = await state.assessment;
      const outcome = decideOutcome({
        assessment,
        mode: settings.mode,
        nextHops: state.nextHops,
        ignoredNextHops: opts.ignoredNextHops,
        milterName: opts.milterName,
        messageId: state.id,
        rejectMessage: opts.rejectMessage,
      });

      if (assessment.failOpen) {
        log.warn({ domain: assessment.domain, result: assessment.result, reason: assessment.reason }, `SPF policy of 5321_from_domain=${assessment.domain} not judged (fail open): ${assessment.reason}`);
        metrics?.failedOpen(assessment.result);
      }
      if (assessment.ownership === 'unknown') {
        log.warn({ domain: assessment.domain, error: assessment.ownershipError }, 'LDAP lookup failed: domain treated as not own');
      }
      if (assessment.violation && assessment.ownership === 'own') {
        log.info(`5321_from_domain=${assessment.domain} (LDAP) has a broken SPF-record!`);
      }
      switch (outcome.action) {
        case 'pass-ignored-next-hop':
          log.info(`Passing message due to ignored next-hop=${state.nextHops.join(',')}`);
          break;
        case 'reject':
          log.warn(`mode=reject client=${client} ${violationSentence(assessment)}`);
          break;
        case 'log':
        case 'tag':
          log.info(`mode=test client=${client} ${violationSentence(assessment)}`);
          break;
        default:
          break;
      }

      log.info(
        {
          domain: assessment.domain,
          own: assessment.ownership,
          record: assessment.record,
          recordDomain: assessment.recordDomain !== assessment.domain ? assessment.recordDomain : undefined,
          check: assessment.check,
          result: assessment.result,
          outbound: assessment.outbound?.map((o) => `${o.ip}=${o.result}`).join(','),
          action: outcome.action,
          reason: outcome.reason,
          client,
          latencyMs: Math.round(elapsedMs(state.startedAt) * 1000) / 1000,
        },
        'judged',
      );
      metrics?.judged({
        action: outcome.action,
        check: assessment.check,
        ownership: assessment.ownership,
        result: assessment.result,
        violation: assessment.violation,
      });

      if (outcome.action === 'reject' && outcome.rejectText) return Verdict.reply(550, '5.7.1', outcome.rejectText);
      if (outcome.action === 'tag' && outcome.header) ctx.addHeader(outcome.header.name, outcome.header.value);
      return Verdict.continue();
    },
  };
}
