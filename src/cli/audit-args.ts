// The command line of `sos-milter audit`: usage, help and the parsed options.
import { parseArgs } from 'node:util';
import { environmentHelp } from '../config/index.js';
import { ExitCode } from '../app/exit-codes.js';

export const AUDIT_USAGE = 'usage: sos-milter audit [--json | --csv] [--concurrency N] [--only-broken] [--dmarc] [--history PATH|URL [--changes-only] [--dry-run]]';

const DEFAULT_CONCURRENCY = 16;
const MAX_CONCURRENCY = 256;

export const AUDIT_HELP = `${AUDIT_USAGE}

Lists every own domain from LDAP (LDAP_SEARCH_BASE, LDAP_AUDIT_FILTER, paged per RFC 2696)
and judges each exactly as the milter configured by this environment would judge a message
from postmaster@DOMAIN: the record, the check, the action in each MILTER_MODE, the reason,
the lookup budget and, for each that fails, the remedy: the smallest change to its record
that passes the configured check, itself verified (and within RFC 7208's 10 DNS lookups
and 2 void lookups), or why none exists.

  --json            one JSON object per domain (JSON lines), then {"summary": ...}
  --csv             CSV with a header row; the summary goes to stderr
  --concurrency N   domains judged at once (default ${DEFAULT_CONCURRENCY}, at most ${MAX_CONCURRENCY})
  --only-broken     list only domains that do not pass (the summary still counts all)
  --history PATH    remember each run in PATH (SQLite file) or a postgresql:// URL (AUDIT_HISTORY):
                    the report adds newly broken, fixed, still broken (since when) and unchanged,
                    and each change is notified once (AUDIT_WEBHOOK_URL, AUDIT_SMTP_URL)
  --changes-only    with --history: list only the domains that newly broke or were fixed
  --dry-run         with --history: print what would be sent; the history is left unchanged
  --dmarc           the DMARC columns, also with DMARC_CHECK=off (on: always shown): the
                    domain's DMARC policy and where it was found; alignment readiness:
                    would SPF align (mail From: the domain, sent with the domain as
                    envelope sender: SPF passes for the relays), is DKIM signing configured
                    for it (DKIM_SIGNING_DOMAINS, adkim); the verdict for such a message
  -h, --help        show this help

A progress bar is drawn on stderr when stdout and stderr are terminals.
Status per domain: pass; fail (a message would be rejected, tagged or logged);
unjudged (the milter fails open: no record, permerror, DNS failure).

${environmentHelp('audit')}
Exit status: ${ExitCode.OK} every domain passes; ${ExitCode.FAILURE} some domain fails or cannot be judged;
${ExitCode.INCOMPLETE} the audit could not complete (bad configuration, LDAP unreachable or failing); ${ExitCode.USAGE} usage.
`;

export type AuditFormat = 'table' | 'json' | 'csv';

export interface AuditArgs {
  format: AuditFormat;
  concurrency: number;
  onlyBroken: boolean;
  history: string | undefined;
  changesOnly: boolean;
  dryRun: boolean;
  /** --dmarc: the DMARC columns even with DMARC_CHECK=off. */
  dmarc: boolean;
}

/** The options, or 'help'; throws with the message for the user on a usage error. */
export function parseAuditArgs(argv: string[]): AuditArgs | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      csv: { type: 'boolean', default: false },
      concurrency: { type: 'string' },
      'only-broken': { type: 'boolean', default: false },
      history: { type: 'string' },
      'changes-only': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      dmarc: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (values.json && values.csv) throw new Error('--json and --csv exclude each other');
  let concurrency = DEFAULT_CONCURRENCY;
  if (values.concurrency !== undefined) {
    if (!/^[0-9]+$/.test(values.concurrency) || Number(values.concurrency) < 1 || Number(values.concurrency) > MAX_CONCURRENCY) {
      throw new Error(`--concurrency: ${JSON.stringify(values.concurrency)} is not an integer from 1 to ${MAX_CONCURRENCY}`);
    }
    concurrency = Number(values.concurrency);
  }
  if (values.history !== undefined && values.history.trim() === '') throw new Error('--history: empty; give a file path or a postgresql:// URL');
  return {
    format: values.json ? 'json' : values.csv ? 'csv' : 'table',
    concurrency,
    onlyBroken: values['only-broken'] === true,
    history: values.history,
    changesOnly: values['changes-only'] === true,
    dryRun: values['dry-run'] === true,
    dmarc: values.dmarc === true,
  };
}
