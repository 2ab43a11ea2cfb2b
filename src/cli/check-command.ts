// `sos-milter check SENDER [--client IP] [--helo NAME] [--next-hop HOP ...] [--json]`:
// what the milter, configured by this environment, would do with a message from SENDER.
// The same configuration, assessment and outcome code as the daemon, against live DNS and LDAP.
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/index.js';
import { environmentHelp } from '../config/variables.js';
import { createPolicyParts } from '../daemon/policy-parts.js';
import { remedyText, type Remedy } from '../policy/index.js';
import { createDomainJudge, type BudgetReport } from './domain-report.js';
import { silentLogger } from '../log/index.js';
import {
  assessSender,
  decideOutcome,
  newMessageId,
  parseEnvelopeSender,
  violationSentence,
  type Assessment,
  type Outcome,
} from '../policy/index.js';

export const CHECK_USAGE = 'usage: sos-milter check SENDER [--client IP] [--helo NAME] [--next-hop HOP]... [--json]';

const HELP = `${CHECK_USAGE}

Shows what sos-milter, configured by the current environment (MILTER_MODE, SPF_CHECK,
SPF_REGEX, OUTBOUND_IPS, LDAP_*, DNS_* ...), would do with a message whose envelope sender
is SENDER: the record found, the check, own or foreign, and the action with its reply.

  --client IP      client address for the log sentence (default 127.0.0.1)
  --helo NAME      HELO name, for SPF's %{h} (default: the sender's domain)
  --next-hop HOP   {rcpt_host} of a recipient; repeat for several (default: one unknown)
  --json           print the assessment and outcome as JSON

When the sender's domain fails, also the remedy: the smallest change to its record that
passes the configured check (verified, within RFC 7208's lookup limits), and the record's
DNS lookup budget (flagged at 8 of 10, or when the ESP's mechanism would exceed 10).

${environmentHelp('check')}
Exit status: 0 when the message would pass, 1 for a violation (rejected, marked or logged),
64 for usage errors, 78 for a bad environment.
`;

interface CheckReport {
  sender: string;
  judged: boolean;
  reason?: string;
  assessment?: Assessment;
  outcome?: Outcome;
  reply?: string;
  remedy?: Remedy;
  lookups?: BudgetReport;
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
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (parsed.values.help) {
      out.write(HELP);
      return 0;
    }
    if (parsed.positionals.length !== 1) throw new Error(`expected SENDER, got ${parsed.positionals.length} argument(s)`);
    if (isIP(parsed.values.client ?? '') === 0) throw new Error(`--client: not an IP address: ${JSON.stringify(parsed.values.client)}`);
  } catch (err) {
    out.write(`sos-milter check: ${(err as Error).message}\n${CHECK_USAGE}\n`);
    return 64;
  }

  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      out.write(`sos-milter check: configuration error: ${err.message}\n`);
      return 78;
    }
    throw err;
  }

  const rawSender = parsed.positionals[0]!;
  const sender = parseEnvelopeSender(rawSender);
  const report: CheckReport = { sender: rawSender, judged: sender.kind === 'domain' };
  if (sender.kind !== 'domain') {
    report.reason = sender.kind === 'null' ? 'null sender (bounce/DSN): not judged' : `not judged: ${sender.reason}`;
    print(out, report, parsed.values.json ?? false);
    return 0;
  }

  const parts = createPolicyParts(config, silentLogger());
  const { spf, directory, settings, ignoredNextHops } = parts;
  try {
    const assessment = await assessSender(
      { sender: sender.address, domain: sender.domain, helo: parsed.values.helo ?? sender.domain },
      { spf, ownDomains: directory },
      settings,
    );
    const nextHops = parsed.values['next-hop'] ?? [];
    const outcome = decideOutcome({
      assessment,
      mode: config.milterMode,
      nextHops: nextHops.length > 0 ? nextHops : [undefined],
      ignoredNextHops,
      milterName: config.milterName,
      messageId: newMessageId(),
      rejectMessage: config.milterRejectMessage,
    });
    report.assessment = assessment;
    report.outcome = outcome;
    const { remedy, budget } = await createDomainJudge(config, parts, directory).extras(assessment);
    report.remedy = remedy;
    if (budget) report.lookups = budget;
    if (outcome.rejectText) report.reply = `550 5.7.1 ${outcome.rejectText}`;
    print(out, report, parsed.values.json ?? false, parsed.values.client);
    return outcome.action === 'reject' || outcome.action === 'tag' || outcome.action === 'log' ? 1 : 0;
  } finally {
    await directory?.close();
  }
}

function print(out: NodeJS.WritableStream, report: CheckReport, json: boolean, client = '127.0.0.1'): void {
  if (json) {
    out.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const lines = [`sender:   ${report.sender}`];
  const a = report.assessment;
  if (!a || !report.outcome) {
    lines.push(`verdict:  pass (${report.reason})`);
    out.write(`${lines.join('\n')}\n`);
    return;
  }
  lines.push(`domain:   ${a.domain}${a.recordDomain && a.recordDomain !== a.domain ? ` (record of ${a.recordDomain}, via redirect)` : ''}`);
  lines.push(`record:   ${a.record ?? '(none)'}`);
  lines.push(`check:    ${a.check}`);
  for (const o of a.outbound ?? []) lines.push(`  ${o.ip}: ${o.result} (${o.reason})`);
  lines.push(`own:      ${a.ownership}${a.ownershipError ? ` (${a.ownershipError})` : ''}`);
  lines.push(`result:   ${a.result}${a.failOpen ? ' (fail open)' : ''}`);
  lines.push(`reason:   ${a.reason}`);
  lines.push(`action:   ${report.outcome.action}`);
  if (report.reply) lines.push(`reply:    ${report.reply}`);
  if (report.outcome.header) lines.push(`header:   ${report.outcome.header.name}: ${report.outcome.header.value}`);
  if (report.outcome.action === 'log' || report.outcome.action === 'tag') {
    lines.push(`log:      mode=test client=${client} ${violationSentence(a)}`);
  }
  const b = report.lookups;
  if (b) lines.push(`lookups:  ${b.used}${b.incomplete ? '+' : ''}/${b.limit} DNS-querying terms, ${b.voidLookups}/${b.voidLimit} void${b.warning ? ` ! ${b.warning}` : ''}`);
  if (report.remedy && report.remedy.kind !== 'none') lines.push(`remedy:   ${remedyText(report.remedy)}`);
  out.write(`${lines.join('\n')}\n`);
}
