#!/usr/bin/env node
/**
 * `npm run bench:audit`: `sos-milter audit` of 5,000 own domains (the mix of the audit test:
 * passing, broken, no record, permerror, DNS timeouts, 8 and 9 lookups used) in slapd with a
 * size limit of 500 (so the listing pages), records served by Knot. Runs the audit in process,
 * each run with fresh caches, at a few concurrencies; reports wall time, CPU time, domains
 * per second and peak RSS. Target (issue 9): seconds, not minutes.
 */
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { runAuditCommand } from '../src/cli/audit-command.js';
import { auditEnv, ESP_ZONE, fixtureDomains, HANG_ZONE, ldif, zoneText } from '../test/support/audit-fixture.js';
import { startKnot } from '../test/support/knot.js';
import { startSlapd } from '../test/support/slapd.js';

export interface AuditBenchRow {
  concurrency: number;
  domains: number;
  wallSeconds: number;
  cpuSeconds: number;
  domainsPerSecond: number;
  maxRssMiB: number;
  exitStatus: number;
  pass: number;
  fail: number;
  unjudged: number;
}

export const AUDIT_TARGET = '5,000 domains in seconds, not minutes';

export async function runAuditBench(opts: { domains?: number; concurrency?: number[] } = {}): Promise<AuditBenchRow[]> {
  const total = opts.domains ?? 5000;
  const domains = fixtureDomains(total);
  const knot = await startKnot({ zones: { 'audit.test': zoneText(domains), 'esp.test': ESP_ZONE }, timeoutNames: [HANG_ZONE], blackholeTimeoutMs: 2000 });
  const slapd = await startSlapd({ ldif: ldif(domains), sizeLimit: 500 });
  const rows: AuditBenchRow[] = [];
  try {
    const env = auditEnv(slapd.url, knot.port);
    for (const concurrency of opts.concurrency ?? [16, 64]) {
      let report = '';
      const out = new Writable({
        write(chunk: Buffer, _enc, cb) {
          report += chunk.toString('utf8');
          cb();
        },
      });
      const err = new Writable({ write: (_c, _e, cb) => cb() });
      const cpu = process.cpuUsage();
      const started = process.hrtime.bigint();
      const exitStatus = await runAuditCommand(['--json', '--concurrency', String(concurrency)], env, { out, err, progress: false });
      const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      const used = process.cpuUsage(cpu);
      const summary = (JSON.parse(report.trimEnd().split('\n').pop()!) as { summary: { domains: number; byStatus: Record<string, number> } }).summary;
      rows.push({
        concurrency,
        domains: summary.domains,
        wallSeconds: Math.round(wallSeconds * 100) / 100,
        cpuSeconds: Math.round(((used.user + used.system) / 1e6) * 100) / 100,
        domainsPerSecond: Math.round(summary.domains / wallSeconds),
        maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
        exitStatus,
        pass: summary.byStatus.pass ?? 0,
        fail: summary.byStatus.fail ?? 0,
        unjudged: summary.byStatus.unjudged ?? 0,
      });
    }
  } finally {
    await slapd.close();
    await knot.close();
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // `--domains N` for a larger tree, e.g. 100000.
  const at = process.argv.indexOf('--domains');
  const domains = at >= 0 ? Number(process.argv[at + 1]) : 5000;
  console.log(`== sos-milter audit of ${domains} domains; target: ${AUDIT_TARGET} ==`);
  runAuditBench({ domains }).then(
    (rows) => {
      console.table(rows);
      console.log(JSON.stringify(rows, null, 2));
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
