#!/usr/bin/env node
/**
 * `npm run bench:history [-- --domains N]`: what `audit --history` adds to the audit. The
 * fixture of the audit bench (default 100,000 own domains in slapd, records in Knot); runs in
 * this order: the audit without a history, the first run with a SQLite history (every domain
 * new, the broken ones queued for a webhook that is not delivered to: AUDIT_NOTIFY_MAX_PER_RUN=0),
 * a second run (nothing changed), and the audit without a history again. Prints each run's wall
 * time, the history transaction's own time (history_write_seconds) as a share of the wall time,
 * and the database file's size after each history run.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { runAuditCommand } from '../src/cli/audit-command.js';
import { auditEnv, ESP_ZONE, fixtureDomains, HANG_ZONE, ldif, zoneText } from '../test/support/audit-fixture.js';
import { startKnot } from '../test/support/knot.js';
import { startSlapd } from '../test/support/slapd.js';

export const HISTORY_TARGET = 'the history write adds at most 20 % to the audit wall time (100,000 domains)';

interface Row {
  run: string;
  wallSeconds: number;
  historyWriteSeconds: number | null;
  writeShare: string;
  dbMiB: number | null;
  newlyBroken: number | null;
  queued: number | null;
}

const size = (path: string) => [path, `${path}-wal`].reduce((n, p) => n + (statSync(p, { throwIfNoEntry: false })?.size ?? 0), 0);

export async function runHistoryBench(total: number): Promise<Row[]> {
  const domains = fixtureDomains(total);
  const knot = await startKnot({ zones: { 'audit.test': zoneText(domains), 'esp.test': ESP_ZONE }, timeoutNames: [HANG_ZONE], blackholeTimeoutMs: 2000 });
  const slapd = await startSlapd({ ldif: ldif(domains), sizeLimit: 500 });
  const dir = mkdtempSync(join(tmpdir(), 'sos-history-bench-'));
  const db = join(dir, 'audit.sqlite');
  const rows: Row[] = [];
  try {
    const env = { ...auditEnv(slapd.url, knot.port), AUDIT_WEBHOOK_URL: 'http://127.0.0.1:9/never', AUDIT_WEBHOOK_SECRET: 'bench-secret-0123456789', AUDIT_NOTIFY_MAX_PER_RUN: '0' };
    const run = async (name: string, history: boolean) => {
      let report = '';
      const out = new Writable({ write: (c: Buffer, _e, cb) => ((report += c.toString('utf8')), cb()) });
      const err = new Writable({ write: (_c, _e, cb) => cb() });
      const started = process.hrtime.bigint();
      await runAuditCommand(['--json', '--concurrency', '32', ...(history ? ['--history', db] : [])], env, { out, err, progress: false });
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      const summary = (JSON.parse(report.trimEnd().split('\n').pop()!) as { summary: { history_write_seconds?: number; changes?: Record<string, number>; notifications?: { deferred: number } } }).summary;
      const write = summary.history_write_seconds ?? null;
      rows.push({
        run: name,
        wallSeconds: Math.round(wall * 100) / 100,
        historyWriteSeconds: write,
        writeShare: write === null ? '' : `${((write / (wall - write)) * 100).toFixed(1)} %`,
        dbMiB: history ? Math.round((size(db) / 2 ** 20) * 10) / 10 : null,
        newlyBroken: summary.changes?.newly_broken ?? null,
        queued: summary.notifications?.deferred ?? null,
      });
    };
    await run('no history', false);
    await run('history, first run', true);
    await run('history, unchanged run', true);
    await run('history, unchanged run', true);
    await run('no history', false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await slapd.close();
    await knot.close();
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const at = process.argv.indexOf('--domains');
  const domains = at >= 0 ? Number(process.argv[at + 1]) : 100_000;
  console.log(`== sos-milter audit --history, ${domains} domains; target: ${HISTORY_TARGET} ==`);
  runHistoryBench(domains).then(
    (rows) => {
      console.table(rows);
      console.log(JSON.stringify(rows));
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
