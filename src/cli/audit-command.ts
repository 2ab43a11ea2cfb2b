// `sos-milter audit [--json|--csv] [--concurrency N] [--only-broken]`: every own domain in
// LDAP judged as the daemon would judge a message from it, with the remedy for each that fails.
// The steps live apart: audit-args (command line), audit-run (listing and judging),
// audit-render (the formats), audit-progress (the terminal bar), audit-history (--history: the
// history, notifications, metrics); this file puts them in order.
import { ConfigError, loadAuditHistoryConfig, loadConfig, type AuditHistoryConfig, type Config } from '../config/index.js';
import { createDmarcParts, createPolicyParts } from '../app/policy-parts.js';
import { createLogger, flushLogger, type Logger } from '../log/index.js';
import { ExitCode } from '../app/exit-codes.js';
import { AUDIT_HELP, AUDIT_USAGE, parseAuditArgs, type AuditArgs } from './audit-args.js';
import { ProgressBar } from './audit-progress.js';
import { renderAudit, summarize } from './audit-render.js';
import { judgeDomains, listedOwnDomains, listOwnDomainsWithContacts } from './audit-run.js';
import { changeCounts, deliverySummary, metricsText, openHistory, publishMetrics, recordRun, type HistoryRunResult } from './audit-history.js';
import type { HistoryStore } from '../history/store.js';
import { errorMessage } from '../log/error-message.js';
import { createDomainJudge } from './domain-report.js';

export { AUDIT_USAGE } from './audit-args.js';
export type { AuditSummary } from './audit-render.js';

export interface AuditIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Draw the progress bar (default: stdout and stderr are terminals). */
  progress?: boolean;
}

function auditLogger(config: Config, err: NodeJS.WritableStream): Logger {
  // Logs (LDAP and DNS trouble) go to stderr: stdout is the report.
  return createLogger({ name: config.milterName, level: config.logLevel, format: config.logFormat, destination: { write: (line: string) => err.write(line) } });
}

export async function runAuditCommand(argv: string[], env: NodeJS.ProcessEnv, io: AuditIo): Promise<number> {
  const { out, err } = io;
  let args: AuditArgs | 'help';
  try {
    args = parseAuditArgs(argv);
  } catch (e) {
    err.write(`sos-milter audit: ${errorMessage(e)}\n${AUDIT_USAGE}\n`);
    return ExitCode.USAGE;
  }
  if (args === 'help') {
    out.write(AUDIT_HELP);
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
  const parts = createPolicyParts(config, logger, { dmarc: args.dmarc });
  const directory = parts.directory!;
  const bar = new ProgressBar(err, io.progress ?? (Boolean((out as { isTTY?: boolean }).isTTY) && Boolean((err as { isTTY?: boolean }).isTTY)));
  try {
    let listed: Set<string>;
    let contacts: Map<string, string[]>;
    let dkim: Map<string, readonly string[]>;
    // The DMARC columns count LDAP_DKIM_ATTRIBUTE: read with the listing, in the same paged search.
    const dmarcOn = config.dmarcCheck || args.dmarc;
    const readDkim = dmarcOn && config.ldap.dkimAttribute !== undefined;
    try {
      ({ listed, contacts, dkim } = await listOwnDomainsWithContacts(directory, {
        filter: config.ldap.auditFilter,
        attribute: config.ldap.domainAttribute,
        contactAttribute: hconf.mail?.contactAttribute,
        dkim: readDkim,
      }));
    } catch (e) {
      err.write(`sos-milter audit: cannot list the own domains from LDAP: ${errorMessage(e)}\n`);
      return ExitCode.INCOMPLETE;
    }
    const domains = [...listed].sort();
    const dmarc = createDmarcParts(config, parts.resolver, args.dmarc);
    const judge = createDomainJudge(config, parts, listedOwnDomains(listed, directory, readDkim ? dkim : undefined), dmarc);
    bar.update(0, domains.length, true);
    const reports = await judgeDomains(domains, judge, { concurrency: args.concurrency, logger, onDone: (done) => bar.update(done, domains.length) });
    bar.update(domains.length, domains.length, true);
    bar.clear();

    const summary = summarize(reports, Number(process.hrtime.bigint() - started) / 1e9);
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
    const view = history
      ? {
          result: history,
          changesOnly: args.changesOnly,
          summary: {
            changes: changeCounts(history.commit.changes),
            history_write_seconds: Math.round(history.writeSeconds * 1000) / 1000,
            ...(history.delivery ? { notifications: deliverySummary(history.delivery) } : {}),
            ...(history.refusedContacts.length ? { contacts_refused: history.refusedContacts.map((c) => ({ domain: c.domain, reason: c.reason })) } : {}),
            ...(args.dryRun ? { dry_run: true } : {}),
          },
        }
      : undefined;
    renderAudit(args.format, shown, summary, out, err, { dmarc: dmarc !== undefined, ...(view ? { history: view } : {}) });
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
