/**
 * The history in one SQLite file, through node:sqlite where Node has it, else better-sqlite3
 * (sqlite-driver.ts; README "Audit history"). WAL journal, synchronous FULL: a committed run
 * survives a crash of the process and of the machine.
 *
 * One audit at a time per file: the shipped schedulers never overlap runs (systemd oneshot
 * service, CronJob concurrencyPolicy Forbid); a second writer waits for the first's commit
 * (busy timeout) and then reads the states that commit left.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DryRunRollback, HistoryError, planRun, SCHEMA_VERSION, type HistoryStore, type RunCommit, type RunInput } from './store.js';
import { rowToEntry, type OutboxRow } from './outbox-row.js';
import { openSqliteDb, type SqliteDb, type SqliteDriverName } from './sqlite-driver.js';
import type { KnownState } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
  domains INTEGER NOT NULL, broken INTEGER NOT NULL, newly_broken INTEGER NOT NULL, fixed INTEGER NOT NULL, unknown INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS domains (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, broken INTEGER NOT NULL, status TEXT NOT NULL,
  since TEXT NOT NULL, last_run INTEGER NOT NULL, record TEXT, suggested TEXT);
CREATE TABLE IF NOT EXISTS results (
  run_id INTEGER NOT NULL, domain_id INTEGER NOT NULL, status INTEGER NOT NULL, result TEXT NOT NULL, change INTEGER NOT NULL,
  PRIMARY KEY (run_id, domain_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, domain TEXT NOT NULL, channel TEXT NOT NULL, recipient TEXT NOT NULL,
  kind TEXT NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT, created_at TEXT NOT NULL, sent_at TEXT);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, id);
`;

/** A second writer waits this long for the first one's commit. */
const BUSY_TIMEOUT_MS = 60_000;

/** `drivers`: which SQLite drivers to try, in order (tests); by default node:sqlite, then better-sqlite3. */
export async function openSqliteHistory(path: string, keepRuns: number, drivers?: readonly SqliteDriverName[]): Promise<HistoryStore> {
  let db: SqliteDb | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = await openSqliteDb(path, drivers);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const mode = db.pragma('journal_mode = WAL');
    if (String(mode).toLowerCase() !== 'wal') throw new Error(`the WAL journal cannot be used here (journal_mode stays ${String(mode)})`);
    db.pragma('synchronous = FULL');
    // Sorts and statement journals in memory, not in temporary files: the image's root file
    // system is read-only (compose read_only, Kubernetes readOnlyRootFilesystem), /tmp included.
    db.pragma('temp_store = MEMORY');
    db.exec(SCHEMA);
    const version = db.prepare<{ value: string }>("SELECT value FROM meta WHERE key = 'schema'").get();
    if (version === undefined) db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    else if (Number(version.value) !== SCHEMA_VERSION) throw new Error(`schema version ${version.value}, this sos-milter reads ${SCHEMA_VERSION}`);
  } catch (e) {
    db?.close();
    throw new HistoryError(`cannot open the audit history ${JSON.stringify(path)}: ${(e as Error).message}`, { cause: e });
  }
  const sql = db;

  const knownStmt = sql.prepare<{ id: number; name: string; broken: number; status: KnownState['status']; since: string }>('SELECT id, name, broken, status, since FROM domains');
  const insertRun = sql.prepare('INSERT INTO runs (started_at, finished_at, domains, broken, newly_broken, fixed, unknown) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const insertDomain = sql.prepare('INSERT INTO domains (name, broken, status, since, last_run, record, suggested) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const updateDomain = sql.prepare('UPDATE domains SET broken = ?, status = ?, since = ?, last_run = ?, record = ?, suggested = ? WHERE name = ?');
  const insertResult = sql.prepare('INSERT INTO results (run_id, domain_id, status, result, change) VALUES (?, ?, ?, ?, ?)');
  const insertOutbox = sql.prepare("INSERT INTO outbox (run_id, domain, channel, recipient, kind, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
  const pruneResults = sql.prepare('DELETE FROM results WHERE run_id <= ?');
  const pruneOutbox = sql.prepare("DELETE FROM outbox WHERE state <> 'pending' AND run_id <= ?");
  const pendingStmt = sql.prepare<OutboxRow>("SELECT * FROM outbox WHERE state = 'pending' ORDER BY id LIMIT ?");
  const pendingCountStmt = sql.prepare<{ n: number }>("SELECT count(*) AS n FROM outbox WHERE state = 'pending'");
  const sentStmt = sql.prepare("UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL WHERE id = ?");
  const failedStmt = sql.prepare('UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ? WHERE id = ?');

  const commit = (input: RunInput, dryRun: boolean): RunCommit => {
    const known = new Map<string, KnownState>();
    // One pass over the domains: their states for the plan, their ids for the results.
    const ids = new Map<string, number>();
    for (const r of knownStmt.all()) {
      known.set(r.name, { broken: r.broken === 1, status: r.status, since: r.since });
      ids.set(r.name, r.id);
    }
    const plan = planRun(input, known);
    const c = plan.changes;
    const runId = Number(
      insertRun.run(input.startedAt.toISOString(), input.finishedAt.toISOString(), input.outcomes.length, plan.broken, c.newlyBroken.length, c.fixed.length, c.unknown.length).lastInsertRowid,
    );
    for (const s of plan.states) {
      if (s.isNew) ids.set(s.domain, Number(insertDomain.run(s.domain, s.broken ? 1 : 0, s.status, s.since, runId, s.record, s.suggested).lastInsertRowid));
      else updateDomain.run(s.broken ? 1 : 0, s.status, s.since, runId, s.record, s.suggested, s.domain);
    }
    for (const r of plan.results) {
      const id = ids.get(r.domain);
      // A first-seen domain with an unknown outcome has no state row yet: nothing to keep for it.
      if (id !== undefined) insertResult.run(runId, id, r.status, r.result, r.change);
    }
    const created = input.finishedAt.toISOString();
    for (const n of plan.outbox) insertOutbox.run(runId, n.domain, n.channel, n.recipient, n.kind, n.payload, created);
    if (runId > keepRuns) {
      pruneResults.run(runId - keepRuns);
      pruneOutbox.run(runId - keepRuns);
    }
    const result = { runId, changes: plan.changes, queued: plan.outbox.length, outbox: plan.outbox };
    if (dryRun) throw new DryRunRollback(result);
    return result;
  };

  const guard = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new HistoryError(`audit history ${JSON.stringify(path)}: ${what} failed: ${(e as Error).message}`, { cause: e });
    }
  };

  return {
    kind: 'sqlite',
    location: path,
    commitRun: (input, options) =>
      Promise.resolve(
        guard('recording the run', () => {
          try {
            return sql.transaction(() => commit(input, options?.dryRun === true));
          } catch (e) {
            if (e instanceof DryRunRollback) return e.result;
            throw e;
          }
        }),
      ),
    pending: (limit) => Promise.resolve(guard('reading the outbox', () => pendingStmt.all(limit).map(rowToEntry))),
    pendingCount: () => Promise.resolve(guard('reading the outbox', () => pendingCountStmt.get()!.n)),
    markSent: (id, at) => Promise.resolve(void guard('marking a notification sent', () => sentStmt.run(at.toISOString(), id))),
    markFailed: (id, error, final) => Promise.resolve(void guard('marking a notification failed', () => failedStmt.run(final ? 'failed' : 'pending', error.slice(0, 1000), id))),
    close: () => Promise.resolve(void sql.close()),
  };
}
