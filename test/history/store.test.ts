/**
 * The history store on SQLite: change sets over three runs, the outbox (queued once per
 * change, never for an unchanged status), unknown outcomes keeping the last known state,
 * dry runs leaving nothing behind, retention, and a path that cannot be written. The SQLite
 * driver is node:sqlite where Node has it (22.13 and later), else better-sqlite3 (Node 20): the
 * suite runs on both (scripts/test.sh), and the driver not in use must fail with a clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHistory } from '../../src/history/open.js';
import { openSqliteHistory } from '../../src/history/sqlite.js';
import { openSqliteDb, type SqliteDriverName } from '../../src/history/sqlite-driver.js';
import { HistoryError, type HistoryStore, type RunInput } from '../../src/history/store.js';
import type { DomainOutcome } from '../../src/history/types.js';

function outcome(domain: string, status: DomainOutcome['status'], unknown = false): DomainOutcome {
  return { domain, status, result: status === 'pass' ? 'pass' : unknown ? 'temperror' : 'fail', unknown, record: `v=spf1 -all`, reason: 'r', suggested: status === 'pass' ? null : 'v=spf1 include:x -all', remedy: null, lookups: { used: 1, limit: 10 }, contacts: [] };
}

function run(outcomes: DomainOutcome[], at: number): RunInput {
  return { startedAt: new Date(at), finishedAt: new Date(at + 1000), outcomes, recipients: () => [{ channel: 'webhook', recipient: '' }] };
}

const names = (xs: { domain: string }[]) => xs.map((x) => x.domain).sort();

async function withStore(f: (store: HistoryStore, path: string) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), 'sos-history-'));
  const path = join(dir, 'sub', 'history.sqlite');
  const store = await openHistory(path, { keepRuns: 2 });
  try {
    await f(store, path);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('three runs: exact change sets, one notification per change, none for unchanged statuses', async () => {
  await withStore(async (store, path) => {
    const r1 = await store.commitRun(run([outcome('a.test', 'pass'), outcome('b.test', 'fail'), outcome('c.test', 'pass')], 1_000_000));
    assert.deepEqual(names(r1.changes.newlyBroken), ['b.test']);
    assert.deepEqual(names(r1.changes.unchanged), ['a.test', 'c.test']);
    assert.equal(r1.queued, 1);
    const since = r1.changes.newlyBroken[0]!.since;

    const r2 = await store.commitRun(run([outcome('a.test', 'fail'), outcome('b.test', 'unjudged'), outcome('c.test', 'pass', false)], 2_000_000));
    assert.deepEqual(names(r2.changes.newlyBroken), ['a.test']);
    assert.deepEqual(names(r2.changes.stillBroken), ['b.test']);
    assert.equal(r2.changes.stillBroken[0]!.since, since, 'still broken since the first run');
    assert.deepEqual(names(r2.changes.unchanged), ['c.test']);
    assert.equal(r2.queued, 1);

    // c's DNS fails: unknown, keeps "pass"; b is fixed; a unchanged broken.
    const r3 = await store.commitRun(run([outcome('a.test', 'fail'), outcome('b.test', 'pass'), outcome('c.test', 'unjudged', true)], 3_000_000));
    assert.deepEqual(names(r3.changes.fixed), ['b.test']);
    assert.deepEqual(names(r3.changes.stillBroken), ['a.test']);
    assert.deepEqual(names(r3.changes.unknown), ['c.test']);
    assert.equal(r3.queued, 1);

    // An unchanged run queues nothing.
    const r4 = await store.commitRun(run([outcome('a.test', 'fail'), outcome('b.test', 'pass'), outcome('c.test', 'pass')], 4_000_000));
    assert.equal(r4.queued, 0);
    assert.deepEqual(names(r4.changes.unchanged), ['b.test', 'c.test']);

    const pending = await store.pending(100);
    assert.deepEqual(pending.map((p) => [p.domain, p.payload.event]), [['b.test', 'spf.newly_broken'], ['a.test', 'spf.newly_broken'], ['b.test', 'spf.fixed']]);
    await store.markSent(pending[0]!.id, new Date());
    await store.markFailed(pending[1]!.id, 'down', false);
    await store.markFailed(pending[2]!.id, 'gone', true);
    assert.deepEqual((await store.pending(100)).map((p) => [p.id, p.attempts]), [[pending[1]!.id, 1]]);

    // A reopened store sees the same state (the file is the history), and retention kept 2 runs of results.
    await store.close();
    const again = await openHistory(path, { keepRuns: 2 });
    try {
      assert.equal(await again.pendingCount(), 1);
      const r5 = await again.commitRun(run([outcome('a.test', 'fail')], 5_000_000));
      assert.deepEqual(names(r5.changes.stillBroken), ['a.test']);
      const db = await openSqliteDb(path);
      const runsKept = db.prepare<{ run_id: number }>('SELECT DISTINCT run_id FROM results ORDER BY run_id').all();
      db.close();
      assert.deepEqual(runsKept.map((r) => r.run_id), [4, 5]);
    } finally {
      await again.close();
    }
  });
});

test('a dry run reports the changes and writes nothing', async () => {
  await withStore(async (store) => {
    const dry = await store.commitRun(run([outcome('a.test', 'fail')], 1_000), { dryRun: true });
    assert.deepEqual(names(dry.changes.newlyBroken), ['a.test']);
    assert.equal(dry.queued, 1);
    assert.equal(dry.outbox.length, 1);
    assert.equal(await store.pendingCount(), 0);
    const real = await store.commitRun(run([outcome('a.test', 'fail')], 2_000));
    assert.deepEqual(names(real.changes.newlyBroken), ['a.test'], 'the dry run left no state');
  });
});

test('an unwritable history path: a HistoryError naming the path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-history-'));
  try {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    await assert.rejects(openHistory(join(file, 'history.sqlite')), (e: unknown) => e instanceof HistoryError && e.message.includes(join(file, 'history.sqlite')));
    writeFileSync(join(dir, 'garbage.sqlite'), 'this is not a database, just text long enough to be read as a header..........');
    await assert.rejects(openHistory(join(dir, 'garbage.sqlite')), HistoryError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// node:sqlite loads without a flag from Node 22.13 (and 23.4); Node 20 has none.
const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
const hasNodeSqlite = major >= 23 || (major === 22 && minor >= 13);
const expected: SqliteDriverName = hasNodeSqlite ? 'node:sqlite' : 'better-sqlite3';

test(`the SQLite driver on Node ${process.versions.node} is ${expected}; the file is in WAL mode`, async () => {
  await withStore(async (store, path) => {
    await store.commitRun(run([outcome('a.test', 'fail')], 1_000));
    const db = await openSqliteDb(path);
    try {
      assert.equal(db.driver, expected);
      assert.equal(db.pragma('journal_mode'), 'wal', 'WAL is recorded in the file');
      db.pragma('synchronous = FULL');
      assert.equal(db.pragma('synchronous'), 2, 'synchronous FULL is 2 on this driver too');
    } finally {
      db.close();
    }
  });
});

test('a transaction that throws is rolled back, and the connection takes the next one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-history-'));
  const db = await openSqliteDb(join(dir, 't.sqlite'));
  try {
    db.exec('CREATE TABLE t (x INTEGER)');
    assert.throws(() => db.transaction(() => {
      db.prepare('INSERT INTO t (x) VALUES (?)').run(1);
      throw new Error('boom');
    }), /boom/);
    assert.equal(Number(db.transaction(() => db.prepare('INSERT INTO t (x) VALUES (?)').run(2).lastInsertRowid)), 1, 'the rolled-back row left no rowid behind');
    assert.deepEqual(db.prepare<{ x: number }>('SELECT x FROM t').all().map((r) => r.x), [2]);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no SQLite driver loads: a HistoryError naming the history and why each driver failed', async (t) => {
  const other: SqliteDriverName = hasNodeSqlite ? 'better-sqlite3' : 'node:sqlite';
  const dir = mkdtempSync(join(tmpdir(), 'sos-history-'));
  try {
    const path = join(dir, 'h.sqlite');
    let store;
    try {
      store = await openSqliteHistory(path, 2, [other]);
    } catch (e) {
      assert.ok(e instanceof HistoryError, String(e));
      assert.match(e.message, new RegExp(`^cannot open the audit history ".*h\\.sqlite": no SQLite driver can be loaded on Node ${process.versions.node} .*: ${other}: \\S`));
      assert.ok(e.cause instanceof Error);
      return;
    }
    await store.close();
    t.skip(`${other} loads here too (built for this Node)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
