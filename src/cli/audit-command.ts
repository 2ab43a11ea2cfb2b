// `sos-milter audit [--json|--csv] [--concurrency N] [--only-broken]`: every own domain in
// LDAP judged as the daemon would judge a message from it, with the remedy for each that fails.
// The steps live apart: audit-args (command line), audit-run (listing and judging),
// audit-render (the formats), audit-progress (the terminal bar); this file puts them in order.
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import { createDmarcParts, createPolicyParts } from '../app/policy-parts.js';
import { createLogger, flushLogger, type Logger } from '../log/index.js';
import { ExitCode } from '../app/exit-codes.js';
import { AUDIT_HELP, AUDIT_USAGE, parseAuditArgs, type AuditArgs } from './audit-args.js';
import { ProgressBar } from './audit-progress.js';
import { renderAudit, summarize } from './audit-render.js';
import { judgeDomains, listedOwnDomains, listOwnDomains } from './audit-run.js';
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
    err.write(`sos-milter audit: ${(e as Error).message}\n${AUDIT_USAGE}\n`);
    return ExitCode.USAGE;
  }
  if (args === 'help') {
    out.write(AUDIT_HELP);
    return ExitCode.OK;
  }
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err.write(`sos-milter audit: configuration error: ${e.message}\n`);
    return ExitCode.INCOMPLETE;
  }
  if (!config.ldap) {
    err.write('sos-milter audit: LDAP_ENABLED is not set; the audit reads the own domains from LDAP (see --help)\n');
    return ExitCode.INCOMPLETE;
  }
  const started = process.hrtime.bigint();
  const logger = auditLogger(config, err);
  const parts = createPolicyParts(config, logger);
  const directory = parts.directory!;
  const bar = new ProgressBar(err, io.progress ?? (Boolean((out as { isTTY?: boolean }).isTTY) && Boolean((err as { isTTY?: boolean }).isTTY)));
  try {
    let listed: Set<string>;
    try {
      listed = await listOwnDomains(directory, { filter: config.ldap.auditFilter, attribute: config.ldap.domainAttribute });
    } catch (e) {
      err.write(`sos-milter audit: cannot list the own domains from LDAP: ${(e as Error).message}\n`);
      return ExitCode.INCOMPLETE;
    }
    const domains = [...listed].sort();
    const dmarc = createDmarcParts(config, parts.resolver, args.dmarc);
    const judge = createDomainJudge(config, parts, listedOwnDomains(listed, directory), dmarc);
    bar.update(0, domains.length, true);
    const reports = await judgeDomains(domains, judge, { concurrency: args.concurrency, logger, onDone: (done) => bar.update(done, domains.length) });
    bar.update(domains.length, domains.length, true);
    bar.clear();

    const summary = summarize(reports, Number(process.hrtime.bigint() - started) / 1e9);
    const shown = args.onlyBroken ? reports.filter((r) => r.status !== 'pass') : reports;
    renderAudit(args.format, shown, summary, out, err, dmarc !== undefined);
    return summary.byStatus.pass === summary.domains ? ExitCode.OK : ExitCode.FAILURE;
  } finally {
    bar.clear();
    await directory.close();
    flushLogger(logger);
  }
}
