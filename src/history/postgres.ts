/**
 * The history in PostgreSQL, for several replicas sharing one history, through `pg`. The same
 * tables as SQLite. An audit holds a session advisory lock from opening the history until it
 * closes it, so two audits (two replicas, or a CronJob retried while the last run still
 * delivers) never read the same states or deliver the same notification: the second waits.
 */
import type { Client as PgClient } from 'pg';
import { HistoryError, planRun, redactLocation, SCHEMA_VERSION, type HistoryStore, type RunCommit, type RunInput } from './store.js';
import { rowToEntry } from './outbox-row.js';
import type { KnownState } from './types.js';

/** pg_advisory_lock key: "sos-milter audit" in a bigint. */
const LOCK_KEY = '7378736d696c7465';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id BIGSERIAL PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
  domains INTEGER NOT NULL, broken INTEGER NOT NULL, newly_broken INTEGER NOT NULL, fixed INTEGER NOT NULL, unknown INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS domains (
  id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, broken BOOLEAN NOT NULL, status TEXT NOT NULL,
  since TEXT NOT NULL, last_run BIGINT NOT NULL, record TEXT, suggested TEXT);
CREATE TABLE IF NOT EXISTS results (
  run_id BIGINT NOT NULL, domain_id BIGINT NOT NULL, status SMALLINT NOT NULL, result TEXT NOT NULL, change SMALLINT NOT NULL,
  PRIMARY KEY (run_id, domain_id));
CREATE TABLE IF NOT EXISTS outbox (
  id BIGSERIAL PRIMARY KEY, run_id BIGINT NOT NULL, domain TEXT NOT NULL, channel TEXT NOT NULL, recipient TEXT NOT NULL,
  kind TEXT NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT, created_at TEXT NOT NULL, sent_at TEXT);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, id);
`;

const CHUNK = 5000;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

export async function openPostgresHistory(url: string, keepRuns: number): Promise<HistoryStore> {
  const where = redactLocation(url);
  let client: PgClient;
  try {
    const pg = (await import('pg')).default;
    client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'sos-milter audit' });
    // An idle connection lost mid-run must not crash the process: the next query reports it.
    client.on('error', () => undefined);
    await client.connect();
    await client.query('SELECT pg_advisory_lock($1::bigint)', [BigInt('0x' + LOCK_KEY).toString()]);
    await client.query(SCHEMA);
    const v = await client.query<{ value: string }>("SELECT value FROM meta WHERE key = 'schema'");
    if (v.rows.length === 0) await client.query("INSERT INTO meta (key, value) VALUES ('schema', $1) ON CONFLICT DO NOTHING", [String(SCHEMA_VERSION)]);
    else if (Number(v.rows[0]!.value) !== SCHEMA_VERSION) throw new Error(`schema version ${v.rows[0]!.value}, this sos-milter reads ${SCHEMA_VERSION}`);
  } catch (e) {
    throw new HistoryError(`cannot open the audit history ${where}: ${(e as Error).message}`, { cause: e });
  }

  const guard = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw new HistoryError(`audit history ${where}: ${what} failed: ${(e as Error).message}`, { cause: e });
    }
  };

  const commitRun = async (input: RunInput, dryRun: boolean): Promise<RunCommit> => {
    await client.query('BEGIN');
    try {
      const known = new Map<string, KnownState>();
      const rows = await client.query<{ name: string; broken: boolean; status: KnownState['status']; since: string }>('SELECT name, broken, status, since FROM domains');
      for (const r of rows.rows) known.set(r.name, { broken: r.broken, status: r.status, since: r.since });
      const plan = planRun(input, known);
      const c = plan.changes;
      const run = await client.query<{ id: string }>(
        'INSERT INTO runs (started_at, finished_at, domains, broken, newly_broken, fixed, unknown) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id',
        [input.startedAt.toISOString(), input.finishedAt.toISOString(), input.outcomes.length, plan.broken, c.newlyBroken.length, c.fixed.length, c.unknown.length],
      );
      const runId = Number(run.rows[0]!.id);
      for (const part of chunks(plan.states)) {
        await client.query(
          `INSERT INTO domains (name, broken, status, since, last_run, record, suggested)
           SELECT * FROM unnest($1::text[], $2::boolean[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[])
           ON CONFLICT (name) DO UPDATE SET broken = EXCLUDED.broken, status = EXCLUDED.status, since = EXCLUDED.since,
             last_run = EXCLUDED.last_run, record = EXCLUDED.record, suggested = EXCLUDED.suggested`,
          [part.map((s) => s.domain), part.map((s) => s.broken), part.map((s) => s.status), part.map((s) => s.since), part.map(() => runId), part.map((s) => s.record), part.map((s) => s.suggested)],
        );
      }
      for (const part of chunks(plan.results)) {
        await client.query(
          `INSERT INTO results (run_id, domain_id, status, result, change)
           SELECT $1, d.id, r.status, r.result, r.change
           FROM unnest($2::text[], $3::smallint[], $4::text[], $5::smallint[]) AS r(name, status, result, change) JOIN domains d ON d.name = r.name`,
          [runId, part.map((r) => r.domain), part.map((r) => r.status), part.map((r) => r.result), part.map((r) => r.change)],
        );
      }
      const created = input.finishedAt.toISOString();
      for (const part of chunks(plan.outbox)) {
        await client.query(
          `INSERT INTO outbox (run_id, domain, channel, recipient, kind, payload, created_at)
           SELECT $1, * , $7 FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`,
          [runId, part.map((n) => n.domain), part.map((n) => n.channel), part.map((n) => n.recipient), part.map((n) => n.kind), part.map((n) => n.payload), created],
        );
      }
      if (runId > keepRuns) {
        await client.query('DELETE FROM results WHERE run_id <= $1', [runId - keepRuns]);
        await client.query("DELETE FROM outbox WHERE state <> 'pending' AND run_id <= $1", [runId - keepRuns]);
      }
      await client.query(dryRun ? 'ROLLBACK' : 'COMMIT');
      return { runId, changes: plan.changes, queued: plan.outbox.length, outbox: plan.outbox };
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  };

  return {
    kind: 'postgres',
    location: where,
    commitRun: (input, options) => guard('recording the run', () => commitRun(input, options?.dryRun === true)),
    pending: (limit) =>
      guard('reading the outbox', async () => (await client.query("SELECT * FROM outbox WHERE state = 'pending' ORDER BY id LIMIT $1", [limit])).rows.map(rowToEntry)),
    pendingCount: () => guard('reading the outbox', async () => Number((await client.query<{ n: string }>("SELECT count(*) AS n FROM outbox WHERE state = 'pending'")).rows[0]!.n)),
    markSent: (id, at) =>
      guard('marking a notification sent', async () => void (await client.query("UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = $1, last_error = NULL WHERE id = $2", [at.toISOString(), id]))),
    markFailed: (id, error, final) =>
      guard('marking a notification failed', async () => void (await client.query('UPDATE outbox SET state = $1, attempts = attempts + 1, last_error = $2 WHERE id = $3', [final ? 'failed' : 'pending', error.slice(0, 1000), id]))),
    close: async () => {
      await client.end().catch(() => undefined);
    },
  };
}
