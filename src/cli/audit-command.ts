// `sos-milter audit [--json|--csv] [--concurrency N] [--only-broken]`: every own domain in
// LDAP judged as the daemon would judge a message from it, with the remedy for each that fails.
import { domainToASCII } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, environmentHelp, loadAuditHistoryConfig, loadConfig, type AuditHistoryConfig, type Config } from '../config/index.js';
import { createPolicyParts } from '../app/policy-parts.js';
import { createLogger, flushLogger, type Logger } from '../log/index.js';
import type { OwnDomainAnswer, OwnDomainPort } from '../policy/index.js';
import { remedyText } from '../policy/index.js';
import { createDomainJudge, lookupsUsed, terminalLine, terminalQuoted, type DomainReport, type DomainStatus } from './domain-report.js';
import { ExitCode } from '../app/exit-codes.js';
import { changeCounts, changeLines, deliverySummary, metricsText, openHistory, publishMetrics, recordRun, type HistoryRunResult } from './audit-history.js';
import type { HistoryStore } from '../history/store.js';
import { errorMessage } from '../log/error-message.js';

export const AUDIT_USAGE = 'usage: sos-milter audit [--json | --csv] [--concurrency N] [--only-broken] [--history PATH|URL [--changes-only] [--dry-run]]';


const DEFAULT_CONCURRENCY = 16;
const MAX_CONCURRENCY = 256;

const HELP = `${AUDIT_USAGE}

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
  -h, --help        show this help

A progress bar is drawn on stderr when stdout and stderr are terminals.
Status per domain: pass; fail (a message would be rejected, tagged or logged);
unjudged (the milter fails open: no record, permerror, DNS failure).

${environmentHelp('audit')}
Exit status: ${ExitCode.OK} every domain passes; ${ExitCode.FAILURE} some domain fails or cannot be judged;
${ExitCode.INCOMPLETE} the audit could not complete (bad configuration, LDAP unreachable or failing); ${ExitCode.USAGE} usage.
`;

type Format = 'table' | 'json' | 'csv';

interface AuditArgs {
  format: Format;
  concurrency: number;
  onlyBroken: boolean;
  history: string | undefined;
  changesOnly: boolean;
  dryRun: boolean;
}

export interface AuditIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Draw the progress bar (default: stdout and stderr are terminals). */
  progress?: boolean;
}

function parse(argv: string[]): AuditArgs | 'help' {
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
  };
}

/** Draws `[#####.....] 512/5000 domains` on one line of a terminal, at most every 100 ms. */
class ProgressBar {
  private last = 0;
  constructor(
    private readonly err: NodeJS.WritableStream,
    private readonly enabled: boolean,
  ) {}

  update(done: number, total: number, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const width = 30;
    const filled = total === 0 ? width : Math.round((done / total) * width);
    this.err.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} domains`);
  }

  clear(): void {
    if (this.enabled) this.err.write('\r\x1b[2K');
  }
}

export interface AuditSummary {
  domains: number;
  byStatus: Record<DomainStatus, number>;
  byResult: Record<string, number>;
  seconds: number;
}

function summaryLine(s: AuditSummary): string {
  const results = Object.entries(s.byResult)
    .sort((a, b) => b[1] - a[1])
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  return `audited ${s.domains} domains in ${s.seconds.toFixed(1)} s: pass ${s.byStatus.pass}, fail ${s.byStatus.fail}, unjudged ${s.byStatus.unjudged} (results: ${results || 'none'})`;
}

function budgetText(r: DomainReport): string {
  if (!r.budget) return '';
  return `${lookupsUsed(r.budget)}${r.budget.warning ? ` ! ${r.budget.warning}` : ''}`;
}

/** JSON lines: plain values only, the remedy as an object. */
function jsonLine(r: DomainReport, history?: HistoryRunResult): string {
  const change = history?.byDomain.get(r.domain);
  return JSON.stringify({
    domain: r.domain,
    status: r.status,
    result: r.result,
    action: r.actions,
    record: r.record ?? null,
    recordDomain: r.recordDomain,
    reason: r.reason,
    remedy: r.remedy.kind === 'none' ? null : r.remedy.kind === 'record' ? { kind: 'record', record: r.remedy.record, change: r.remedy.change, note: r.remedy.note } : r.remedy,
    lookups: r.budget ?? null,
    ...(history ? { change: change?.kind ?? null, since: change?.since ?? null } : {}),
  });
}

const CSV_HEADER = ['domain', 'status', 'result', 'action_test', 'action_reject', 'record', 'reason', 'remedy', 'suggested_record', 'lookups', 'lookup_warning'];

/** RFC 4180: quote every field that holds a comma, quote, CR or LF; double the quotes. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function csvLine(r: DomainReport, history?: HistoryRunResult): string {
  const change = history?.byDomain.get(r.domain);
  return [
    r.domain,
    r.status,
    r.result,
    r.actions.test,
    r.actions.reject,
    r.record ?? '',
    r.reason,
    remedyText(r.remedy),
    r.remedy.kind === 'record' ? r.remedy.record : '',
    r.budget ? `${r.budget.used}/${r.budget.limit}` : '',
    r.budget?.warning ?? '',
    ...(history ? [change?.kind ?? '', change?.since ?? ''] : []),
  ]
    .map(csvField)
    .join(',');
}

/** Records can hold any printable text; keep one domain per line on a terminal. */
function tableLines(reports: DomainReport[]): string[] {
  const head = ['DOMAIN', 'STATUS', 'RESULT', 'TEST', 'REJECT', 'LOOKUPS'];
  const rows = reports.map((r) => [r.domain, r.status, r.result, r.actions.test, r.actions.reject, r.budget ? lookupsUsed(r.budget) : '-']);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const pad = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const lines = [pad(head)];
  reports.forEach((r, i) => {
    lines.push(terminalLine(pad(rows[i]!)).trimEnd());
    lines.push(`    record: ${r.record === undefined ? '(none)' : terminalQuoted(r.record)}${r.recordDomain ? ` (of ${terminalLine(r.recordDomain)}, via redirect)` : ''}`);
    lines.push(terminalLine(`    reason: ${r.reason}`));
    if (r.budget?.warning) lines.push(terminalLine(`    lookups: ${budgetText(r)}`));
    if (r.remedy.kind !== 'none') lines.push(terminalLine(`    remedy: ${remedyText(r.remedy)}`));
  });
  return lines;
}

/** The audited domains are own by definition (they came from LDAP): asked of LDAP again, they would say so. */
function ownDomainsPort(listed: ReadonlySet<string>, fallback: OwnDomainPort | undefined): OwnDomainPort {
  return {
    isOwnDomain(domain: string): Promise<OwnDomainAnswer> {
      if (listed.has(domain.toLowerCase())) return Promise.resolve({ own: true, source: 'ldap' });
      return fallback ? fallback.isOwnDomain(domain) : Promise.resolve({ own: false, source: 'ldap' });
    },
  };
}

/** Runs `worker` over `items` with at most `limit` in flight; results keep the input order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, worker: (item: T) => Promise<R>, onDone: (n: number) => void): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const run = async () => {
    for (let i = next++; i < items.length; i = next++) {
      results[i] = await worker(items[i]!);
      onDone(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return results;
}

function auditLogger(config: Config, err: NodeJS.WritableStream): Logger {
  // Logs (LDAP and DNS trouble) go to stderr: stdout is the report.
  return createLogger({ name: config.milterName, level: config.logLevel, format: config.logFormat, destination: { write: (line: string) => err.write(line) } });
}

export async function runAuditCommand(argv: string[], env: NodeJS.ProcessEnv, io: AuditIo): Promise<number> {
  const { out, err } = io;
  let args: AuditArgs | 'help';
  try {
    args = parse(argv);
  } catch (e) {
    err.write(`sos-milter audit: ${(e as Error).message}\n${AUDIT_USAGE}\n`);
    return ExitCode.USAGE;
  }
  if (args === 'help') {
    out.write(HELP);
    return ExitCode.OK;
  }
  let config: Config;
  let hconf: AuditHistoryConfig;
  try {
    config = loadConfig(env);
    hconf = loadAuditHistoryConfig(env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err.write(`sos-milter audit: configuration error: ${e.message}\n`);
    return ExitCode.INCOMPLETE;
  }
  const historyLocation = args.history ?? hconf.history;
  if ((args.changesOnly || args.dryRun) && historyLocation === undefined) {
    err.write(`sos-milter audit: --changes-only and --dry-run need --history (or AUDIT_HISTORY)\n${AUDIT_USAGE}\n`);
    return ExitCode.USAGE;
  }
  if (!config.ldap) {
    err.write('sos-milter audit: LDAP_ENABLED is not set; the audit reads the own domains from LDAP (see --help)\n');
    return ExitCode.INCOMPLETE;
  }
  const started = process.hrtime.bigint();
  const startedAt = new Date();
  const logger = auditLogger(config, err);
  // Opened before the long part: an unwritable path or an unreachable database ends the audit at once.
  let store: HistoryStore | undefined;
  if (historyLocation !== undefined) {
    try {
      store = await openHistory(historyLocation, { keepRuns: hconf.keepRuns });
    } catch (e) {
      err.write(`sos-milter audit: ${errorMessage(e)}\n`);
      await publishMetrics(hconf, metricsText({ byStatus: { pass: 0, fail: 0, unjudged: 0 }, seconds: 0, finishedAt: new Date(), complete: false }), logger);
      flushLogger(logger);
      return ExitCode.INCOMPLETE;
    }
  }
  const parts = createPolicyParts(config, logger);
  const directory = parts.directory!;
  const bar = new ProgressBar(err, io.progress ?? (Boolean((out as { isTTY?: boolean }).isTTY) && Boolean((err as { isTTY?: boolean }).isTTY)));
  try {
    const listed = new Set<string>();
    const contacts = new Map<string, string[]>();
    try {
      for await (const page of directory.listOwnDomainContacts({ filter: config.ldap.auditFilter, attribute: config.ldap.domainAttribute, contactAttribute: hconf.mail?.contactAttribute })) {
        // Judged as the daemon sees a sender domain: in A-labels (IDNA), as DNS needs them.
        for (const { domain, contacts: values } of page) {
          const name = domainToASCII(domain) || domain;
          listed.add(name);
          if (values.length > 0) contacts.set(name, [...(contacts.get(name) ?? []), ...values]);
        }
      }
    } catch (e) {
      err.write(`sos-milter audit: cannot list the own domains from LDAP: ${(e as Error).message}\n`);
      return ExitCode.INCOMPLETE;
    }
    const domains = [...listed].sort();
    const judge = createDomainJudge(config, parts, ownDomainsPort(listed, directory));
    bar.update(0, domains.length, true);
    const reports = await mapBounded(
      domains,
      args.concurrency,
      async (domain): Promise<DomainReport> => {
        try {
          // Kept until the end for sorted output: drop what the report does not print, so
          // that 100,000 domains stay in tens of megabytes.
          const report = await judge.judge(domain);
          if (report.remedy.kind === 'record') report.remedy = { ...report.remedy, budget: undefined };
          return report;
        } catch (e) {
          // Not expected (the assessment fails open by design); one domain must not end the audit.
          logger.error({ domain, err: e }, 'audit: judging the domain failed');
          const reason = `internal error: ${(e as Error).message}`;
          return { domain, status: 'unjudged', result: 'error', actions: { test: 'none', reject: 'none' }, reason, remedy: { kind: 'unknown', reason } };
        }
      },
      (done) => bar.update(done, domains.length),
    );
    bar.update(domains.length, domains.length, true);
    bar.clear();

    const summary: AuditSummary = { domains: reports.length, byStatus: { pass: 0, fail: 0, unjudged: 0 }, byResult: {}, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
    for (const r of reports) {
      summary.byStatus[r.status]++;
      summary.byResult[r.result] = (summary.byResult[r.result] ?? 0) + 1;
    }
    let history: HistoryRunResult | undefined;
    if (store) {
      try {
        history = await recordRun(store, hconf, { startedAt, reports, contacts, dryRun: args.dryRun }, logger);
      } catch (e) {
        err.write(`sos-milter audit: ${errorMessage(e)}\n`);
        await publishMetrics(hconf, metricsText({ byStatus: summary.byStatus, seconds: summary.seconds, finishedAt: new Date(), complete: false }), logger);
        return ExitCode.INCOMPLETE;
      }
    }
    let shown = args.onlyBroken ? reports.filter((r) => r.status !== 'pass') : reports;
    if (history && args.changesOnly) shown = shown.filter((r) => ['newly-broken', 'fixed'].includes(history.byDomain.get(r.domain)?.kind ?? ''));
    const historySummary = history ? { changes: changeCounts(history.commit.changes), history_write_seconds: Math.round(history.writeSeconds * 1000) / 1000, ...(history.delivery ? { notifications: deliverySummary(history.delivery) } : {}), ...(history.refusedContacts.length ? { contacts_refused: history.refusedContacts.map((c) => ({ domain: c.domain, reason: c.reason })) } : {}), ...(args.dryRun ? { dry_run: true } : {}) } : {};
    if (args.format === 'json') {
      for (const r of shown) out.write(`${jsonLine(r, history)}\n`);
      out.write(`${JSON.stringify({ summary: { ...summary, ...historySummary } })}\n`);
    } else if (args.format === 'csv') {
      out.write(`${[...CSV_HEADER, ...(history ? ['change', 'since'] : [])].join(',')}\r\n`);
      for (const r of shown) out.write(`${csvLine(r, history)}\r\n`);
      err.write(`${summaryLine(summary)}\n`);
      if (history) err.write(`${changeLines(history, args.changesOnly).join('\n')}\n`);
    } else {
      if (shown.length > 0) out.write(`${tableLines(shown).join('\n')}\n\n`);
      if (history) out.write(`${changeLines(history, args.changesOnly).join('\n')}\n`);
      out.write(`${summaryLine(summary)}\n`);
    }
    if (history && args.dryRun) {
      const sink = args.format === 'table' ? out : err;
      sink.write(`--dry-run: nothing recorded, nothing sent; ${history.wouldSend.length} notification(s) would be sent${history.wouldSend.length ? ':' : '.'}\n`);
      for (const w of history.wouldSend) sink.write(`${w}\n`);
    }
    if (!args.dryRun) {
      const pending = store ? await store.pendingCount().catch(() => undefined) : undefined;
      await publishMetrics(hconf, metricsText({ byStatus: summary.byStatus, seconds: Number(process.hrtime.bigint() - started) / 1e9, finishedAt: new Date(), complete: true, result: history, pending }), logger);
    }
    return summary.byStatus.pass === summary.domains ? ExitCode.OK : ExitCode.FAILURE;
  } finally {
    bar.clear();
    await directory.close();
    await store?.close();
    flushLogger(logger);
  }
}
