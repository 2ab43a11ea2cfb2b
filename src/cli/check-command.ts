// `sos-milter check SENDER [--client IP] [--helo NAME] [--next-hop HOP ...] [--json]`:
// what the milter, configured by this environment, would do with a message from SENDER.
// The same configuration, assessment and outcome code as the daemon, against live DNS and LDAP.
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import type { Resolver } from '../dns/index.js';
import { environmentHelp } from '../config/variables.js';
import { assessmentTimeoutMs, createDmarcParts, createPolicyParts } from '../app/policy-parts.js';
import { createSrs, rewriteSettings } from '../app/srs-parts.js';
import { parseFromHeader } from '../dmarc/index.js';
import { errorMessage, silentLogger } from '../log/index.js';
import {
  alignmentText,
  assessDmarcReport,
  assessEnvelope,
  decideDmarc,
  dkimInput,
  dkimSourceText,
  dmarcFromDomain,
  ldapDkimFor,
  decideOutcome,
  newMessageId,
  parseEnvelopeSender,
  RecipientHops,
  remedyText,
  violationSentence,
  type Assessment,
  type EnvelopeSender,
  type DmarcOutcome,
  type DmarcReport,
  type MessageFacts,
  type Outcome,
  type OwnDomainPort,
  type Remedy,
} from '../policy/index.js';
import { createDomainJudge, lookupsUsed, terminalLine, type BudgetReport } from './domain-report.js';
import { ExitCode } from '../app/exit-codes.js';

export const CHECK_USAGE = 'usage: sos-milter check SENDER [--from ADDRESS] [--client IP] [--helo NAME] [--next-hop HOP]... [--json]';

const HELP = `${CHECK_USAGE}

Shows what sos-milter, configured by the current environment (MILTER_MODE, SPF_CHECK,
SPF_REGEX, OUTBOUND_IPS, LDAP_*, DNS_* ...), would do with a message whose envelope sender
is SENDER: the record found, the check, own or foreign, and the action with its reply.

  --client IP      client address for the log sentence (default 127.0.0.1)
  --helo NAME      HELO name, for SPF's %{h} (default: the sender's domain)
  --next-hop HOP   {rcpt_host} of a recipient; repeat for several (default: one unknown)
  --from ADDRESS   the message's From: (an address or a whole From: field value): also
                   the prospective DMARC judgement: the policy found and where, SPF and
                   DKIM alignment (DKIM_SIGNING_DOMAINS, LDAP_DKIM_ATTRIBUTE of the From:
                   domain's entry, or a signature present) and where the signing domain
                   came from, the verdict and the action the daemon takes with
                   DMARC_CHECK=on (with it off: judged, not acted on)
  --json           print the assessment and outcome as JSON

When the sender's domain fails, also the remedy: the smallest change to its record that
passes the configured check (verified, within RFC 7208's lookup limits), and the record's
DNS lookup budget (flagged at 8 of 10, or when the ESP's mechanism would exceed 10).

${environmentHelp('check')}
Exit status: ${ExitCode.OK} when the message would pass, ${ExitCode.FAILURE} for a violation (rejected, marked or logged),
${ExitCode.USAGE} for usage errors, ${ExitCode.CONFIG} for a bad environment.
`;

/** What `check` stands in for the MTA's end-of-message macro {i}. */
const CHECK_QUEUE_ID = 'CHECK';

interface CheckReport {
  sender: string;
  assessment: Assessment;
  outcome: Outcome;
  remedy?: Remedy;
  lookups?: BudgetReport;
  dmarc?: DmarcCheck;
}

/** `--from`: the DMARC judgement and what the daemon would do with it. */
interface DmarcCheck {
  from: string;
  /** DMARC_CHECK=on: the daemon acts on the judgement; off: it is only shown here. */
  enabled: boolean;
  report: DmarcReport;
  /** The daemon's action: absent with DMARC_CHECK=off, or when the SPF verdict already refuses or defers. */
  outcome?: DmarcOutcome;
  /** Why there is no outcome. */
  noAction?: string;
}

export async function runCheckCommand(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        client: { type: 'string', default: '127.0.0.1' },
        helo: { type: 'string' },
        'next-hop': { type: 'string', multiple: true },
        from: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (parsed.values.help) {
      out.write(HELP);
      return ExitCode.OK;
    }
    if (parsed.positionals.length !== 1) throw new Error(`expected SENDER, got ${parsed.positionals.length} argument(s)`);
    if (isIP(parsed.values.client ?? '') === 0) throw new Error(`--client: not an IP address: ${JSON.stringify(parsed.values.client)}`);
  } catch (err) {
    out.write(`sos-milter check: ${errorMessage(err)}\n${CHECK_USAGE}\n`);
    return ExitCode.USAGE;
  }

  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      out.write(`sos-milter check: configuration error: ${err.message}\n`);
      return ExitCode.CONFIG;
    }
    throw err;
  }

  // Collect: what the MTA would tell about the message.
  const rawSender = parsed.positionals[0]!;
  const sender = parseEnvelopeSender(rawSender);
  const parts = createPolicyParts(config, silentLogger(), { dmarc: parsed.values.from !== undefined });
  const { spf, directory, settings, ignoredNextHops } = parts;
  const recipients = new RecipientHops();
  const nextHops = parsed.values['next-hop'] ?? [];
  for (const hop of nextHops.length > 0 ? nextHops : [undefined]) recipients.add(hop, ignoredNextHops);
  const facts: MessageFacts = { queueId: CHECK_QUEUE_ID, client: parsed.values.client, recipients, sender: sender.kind === 'null' ? '' : sender.address };
  const srs = config.milterMode === 'rewrite' && config.srs ? createSrs(config.srs) : undefined;
  const helo = parsed.values.helo ?? (sender.kind === 'domain' ? sender.domain : '');
  try {
    // Assess, within the daemon's deadline.
    const assessment = await assessEnvelope(sender, helo, { spf, ownDomains: directory }, settings, {
      signal: AbortSignal.timeout(assessmentTimeoutMs(config)),
    });
    // Decide.
    const outcome = decideOutcome(
      assessment,
      facts,
      {
        mode: config.milterMode,
        ignoredNextHops,
        milterName: config.milterName,
        rejectMessage: config.milterRejectMessage,
        rewrite: srs && config.srs && rewriteSettings(srs, config.srs),
      },
      newMessageId(),
    );
    // Report: the printout.
    const report: CheckReport = { sender: rawSender, assessment, outcome };
    if (assessment.kind !== 'not-judged') {
      const { remedy, budget } = await createDomainJudge(config, parts, directory).extras(assessment);
      report.remedy = remedy;
      if (budget) report.lookups = budget;
    }
    const from = parsed.values.from;
    if (from !== undefined) report.dmarc = await checkDmarc(config, parts.resolver, directory, from, sender, assessment, outcome, facts);
    print(out, report, parsed.values.json ?? false, facts.client);
    const failed = (a: string | undefined): boolean => a === 'reject' || a === 'tag' || a === 'log' || a === 'rewrite';
    return failed(outcome.action) || failed(report.dmarc?.outcome?.action) ? ExitCode.FAILURE : ExitCode.OK;
  } finally {
    await directory?.close();
  }
}

/** The daemon's DMARC step for `--from`: judged after the SPF verdict, acted on only when that lets the message through. */
async function checkDmarc(
  config: Config,
  resolver: Resolver,
  directory: OwnDomainPort | undefined,
  from: string,
  sender: EnvelopeSender,
  assessment: Assessment,
  outcome: Outcome,
  facts: MessageFacts,
): Promise<DmarcCheck> {
  const parts = createDmarcParts(config, resolver, true)!;
  const field = parseFromHeader(from);
  // LDAP_DKIM_ATTRIBUTE: the From: domain's entry, through the same cached lookup as the sender's (no second search for the same domain).
  const fromDomain = parts.ldapSigningDomains && directory ? dmarcFromDomain(field) : undefined;
  const ldap = directory && fromDomain !== undefined ? await ldapDkimFor(directory, fromDomain) : undefined;
  const report = await assessDmarcReport(
    {
      from: field,
      mailFromDomain: sender.kind === 'domain' ? sender.domain : undefined,
      spf: assessment.kind === 'not-judged' ? undefined : assessment,
      ...dkimInput(parts.signingDomains, field, [], ldap),
    },
    resolver,
    { signal: AbortSignal.timeout(assessmentTimeoutMs(config)), psl: parts.psl },
  );
  const check: DmarcCheck = { from, enabled: config.dmarcCheck, report };
  if (!config.dmarcCheck) check.noAction = 'DMARC_CHECK=off: judged here, not acted on by the daemon';
  else if (outcome.action === 'reject' || outcome.action === 'tempfail') check.noAction = `the SPF verdict (${outcome.action}) stands; the DMARC step is not reached`;
  else check.outcome = decideDmarc(report.judgement, facts, { mode: config.milterMode, milterName: config.milterName, rejectMessage: parts.rejectMessage }, newMessageId());
  return check;
}

/** The policy found, in one line. */
function policyText(report: DmarcReport): string {
  const d = report.discovery;
  if (!d) return '-';
  if (d.status === 'none') return `none found (asked ${d.steps.map((s) => `_dmarc.${s.name}`).join(', ')})`;
  if (d.status === 'temperror') return `unknown: ${d.error}`;
  const weakened = d.disposition !== d.policy ? `, applied as ${d.disposition}` : '';
  const at = d.recordDomain === d.domain ? 'at the domain itself' : `at ${d.recordDomain} (${d.appliedTag})`;
  return `${d.appliedTag}=${d.policy}${weakened} ${at}: _dmarc.${d.recordDomain}`;
}

function dmarcLines(c: DmarcCheck): string[] {
  const r = c.report;
  const lines = [`dmarc:    From: ${c.from}${r.fromDomain ? ` (domain ${r.fromDomain})` : ''}`];
  lines.push(`  policy:   ${policyText(r)}`);
  const d = r.discovery;
  const enforcing = d?.status === 'found' && d.disposition !== 'none';
  if (enforcing) {
    lines.push(`  spf:      ${r.spfPasses ? alignmentText(r.spfAlignment, 'MAIL FROM domain') : 'not aligned: SPF does not pass for the relays'}`);
    const source = r.dkimSource ? ` from ${dkimSourceText(r.dkimSource)}` : '';
    lines.push(`  dkim:     ${r.dkimAlignment ? `${alignmentText(r.dkimAlignment, r.dkimDomain)}${source}` : 'no signing domain known (DKIM_SIGNING_DOMAINS, LDAP_DKIM_ATTRIBUTE)'}`);
    for (const c of r.dkimCandidates ?? []) if (c.domain !== r.dkimDomain) lines.push(`            also ${c.domain} from ${dkimSourceText(c.source)}`);
  }
  if (r.dkimLdapError !== undefined) lines.push(`  ldap:     the From: domain's signing domains are not known: ${r.dkimLdapError}`);
  lines.push(`  verdict:  ${r.judgement.kind}: ${r.judgement.reason}`);
  const o = c.outcome;
  if (!o) lines.push(`  action:   none (${c.noAction ?? ''})`);
  else if (o.action === 'reject') lines.push(`  action:   reject`, `  reply:    550 5.7.1 ${o.rejectText}`);
  else if (o.action === 'tag') lines.push(`  action:   tag`, `  header:   ${o.header.name}: ${o.header.value}`);
  else lines.push(`  action:   ${o.action}`);
  return lines;
}

function print(out: NodeJS.WritableStream, report: CheckReport, json: boolean, client: string | undefined): void {
  const { assessment: a, outcome } = report;
  const reply = outcome.action === 'reject' ? `550 5.7.1 ${outcome.rejectText}` : undefined;
  if (json) {
    out.write(`${JSON.stringify({ ...report, judged: a.kind !== 'not-judged', reply }, null, 2)}\n`);
    return;
  }
  const lines = [`sender:   ${report.sender}`];
  if (a.kind === 'not-judged') {
    lines.push(`verdict:  pass (${a.reason})`);
    if (report.dmarc) lines.push(...dmarcLines(report.dmarc));
    out.write(`${lines.map(terminalLine).join('\n')}\n`);
    return;
  }
  lines.push(`domain:   ${a.domain}${a.recordDomain && a.recordDomain !== a.domain ? ` (record of ${a.recordDomain}, via redirect)` : ''}`);
  lines.push(`record:   ${a.record ?? '(none)'}`);
  lines.push(`check:    ${a.check}`);
  for (const o of a.outbound ?? []) lines.push(`  ${o.ip}: ${o.result} (${o.reason})`);
  lines.push(`own:      ${a.ownership}${a.ownershipError ? ` (${a.ownershipError})` : ''}`);
  lines.push(`result:   ${a.result}${a.kind === 'fail-open' ? ' (fail open)' : ''}`);
  lines.push(`reason:   ${a.reason}`);
  lines.push(`action:   ${outcome.action}`);
  if (reply) lines.push(`reply:    ${reply}`);
  if (outcome.action === 'tag') lines.push(`header:   ${outcome.header.name}: ${outcome.header.value}`);
  if (outcome.action === 'rewrite') {
    lines.push(`rewrite:  MAIL FROM:<${outcome.sender}> becomes MAIL FROM:<${outcome.srsAddress}>`);
    lines.push(`header:   ${outcome.header.name}: ${outcome.header.value}`);
  }
  if (outcome.action === 'reject' && outcome.notRewritten) lines.push(`rewrite:  not rewritten (${outcome.notRewritten.reason}: ${outcome.notRewritten.detail})`);
  if (a.kind === 'violation' && (outcome.action === 'log' || outcome.action === 'tag')) {
    lines.push(`log:      mode=test client=${client} ${violationSentence(a)}`);
  }
  const b = report.lookups;
  if (b) lines.push(`lookups:  ${lookupsUsed(b)} DNS-querying terms, ${b.voidLookups}/${b.voidLimit} void${b.warning ? ` ! ${b.warning}` : ''}`);
  if (report.remedy && report.remedy.kind !== 'none') lines.push(`remedy:   ${remedyText(report.remedy)}`);
  if (report.dmarc) lines.push(...dmarcLines(report.dmarc));
  out.write(`${lines.map(terminalLine).join('\n')}\n`);
}
