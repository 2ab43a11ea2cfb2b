/**
 * The SQLite driver under the history (sqlite.ts), one small interface over two drivers:
 * - Node's built-in `node:sqlite` (DatabaseSync) where it loads without a flag (Node 22.13 and
 *   later, Node 24: the image's Node). Nothing to build or install; no ExperimentalWarning on
 *   Node 24 (Node 22 prints one, once per process).
 * - better-sqlite3 (an optional dependency, a native module built for the Node that ran
 *   `npm ci`) on Node 20, which has no `node:sqlite`.
 * Both are synchronous, use the same SQLite file format and take the same SQL; sqlite.ts is
 * written once against {@link SqliteDb}. The transaction is ours (BEGIN IMMEDIATE, COMMIT,
 * ROLLBACK), not a driver's helper, so that both behave alike.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { HistoryError } from './store.js';

export type SqliteValue = string | number | bigint | null;

export interface SqliteStatement<Row> {
  run(...params: SqliteValue[]): { lastInsertRowid: number | bigint };
  get(...params: SqliteValue[]): Row | undefined;
  all(...params: SqliteValue[]): Row[];
}

export interface SqliteDb {
  /** Which driver: for messages and tests. */
  readonly driver: SqliteDriverName;
  prepare<Row = unknown>(sql: string): SqliteStatement<Row>;
  exec(sql: string): void;
  /** `PRAGMA <setting>`; the first column of its first row (e.g. the journal mode now in force), undefined when it returns none. */
  pragma(setting: string): unknown;
  /** Runs `f` in BEGIN IMMEDIATE … COMMIT (the write lock is taken first); ROLLBACK when it throws. */
  transaction<T>(f: () => T): T;
  /** Idempotent (node:sqlite throws on a second close, better-sqlite3 does not). */
  close(): void;
}

export type SqliteDriverName = 'node:sqlite' | 'better-sqlite3';
/** Tried in this order. */
export const SQLITE_DRIVERS: readonly SqliteDriverName[] = ['node:sqlite', 'better-sqlite3'];

/** What both drivers' databases offer (node:sqlite's DatabaseSync, better-sqlite3's Database). */
interface RawDb {
  prepare(sql: string): { run(...p: SqliteValue[]): { lastInsertRowid: number | bigint }; get(...p: SqliteValue[]): unknown; all(...p: SqliteValue[]): unknown[] };
  exec(sql: string): unknown;
  close(): unknown;
}

/** node:sqlite as far as it is used here (typed locally: @types/node 20 has no node:sqlite). */
interface NodeSqliteModule {
  DatabaseSync: new (path: string) => RawDb & { readonly isTransaction?: boolean };
}

interface Opened {
  raw: RawDb & { readonly inTransaction?: boolean; readonly isTransaction?: boolean };
  pragma(setting: string): unknown;
}
type Opener = (path: string) => Opened;

async function loadNodeSqlite(): Promise<Opener> {
  // A variable specifier: the compiler does not resolve it (no types for it in @types/node 20).
  const specifier = 'node:sqlite';
  const { DatabaseSync } = (await import(specifier)) as NodeSqliteModule;
  return (path) => {
    const raw = new DatabaseSync(path);
    // get() on a statement that returns no row (a PRAGMA that sets) gives undefined.
    const pragma = (setting: string): unknown => {
      const row = raw.prepare(`PRAGMA ${setting}`).get() as Record<string, unknown> | undefined;
      return row === undefined ? undefined : Object.values(row)[0];
    };
    return { raw, pragma };
  };
}

async function loadBetterSqlite3(): Promise<Opener> {
  const Database: typeof BetterSqlite3 = (await import('better-sqlite3')).default;
  // The native addon is loaded by the first constructor call: fail here (e.g. built for another
  // Node's ABI, NODE_MODULE_VERSION), not later as if the history file were at fault.
  new Database(':memory:').close();
  return (path) => {
    const raw = new Database(path);
    // better-sqlite3's prepare().get() refuses a PRAGMA that returns no row; its pragma() does not.
    return { raw: raw as unknown as Opened['raw'], pragma: (setting) => raw.pragma(setting, { simple: true }) };
  };
}

const LOADERS: Record<SqliteDriverName, () => Promise<Opener>> = { 'node:sqlite': loadNodeSqlite, 'better-sqlite3': loadBetterSqlite3 };

async function loadDriver(drivers: readonly SqliteDriverName[]): Promise<{ name: SqliteDriverName; open: Opener }> {
  const failures: string[] = [];
  const causes: unknown[] = [];
  for (const name of drivers) {
    try {
      return { name, open: await LOADERS[name]() };
    } catch (e) {
      failures.push(`${name}: ${(e as Error).message.replace(/\s*\n\s*/g, ' ')}`);
      causes.push(e);
    }
  }
  throw new HistoryError(
    `no SQLite driver can be loaded on Node ${process.versions.node} (node:sqlite needs Node 22.13 or later; better-sqlite3 must be installed and built for this Node): ${failures.join('; ')}`,
    { cause: causes.length === 1 ? causes[0] : new AggregateError(causes, failures.join('; ')) },
  );
}

/**
 * Opens the database file at `path` with the first driver that loads. Throws HistoryError
 * naming each driver's failure when none does; the file's own errors (permissions, not a
 * database) are thrown as they come, for the caller to name the file.
 */
export async function openSqliteDb(path: string, drivers: readonly SqliteDriverName[] = SQLITE_DRIVERS): Promise<SqliteDb> {
  const { name, open } = await loadDriver(drivers);
  const { raw, pragma } = open(path);
  let closed = false;
  const db: SqliteDb = {
    driver: name,
    prepare: <Row>(sql: string) => raw.prepare(sql) as SqliteStatement<Row>,
    exec: (sql) => void raw.exec(sql),
    pragma,
    transaction: <T>(f: () => T): T => {
      raw.exec('BEGIN IMMEDIATE');
      try {
        const result = f();
        raw.exec('COMMIT');
        return result;
      } catch (e) {
        // A failed COMMIT may have ended the transaction already (SQLite rolls back on some
        // errors); a Node 22 without isTransaction cannot say, so ROLLBACK is tried then.
        if ((raw.inTransaction ?? raw.isTransaction) !== false) {
          try {
            raw.exec('ROLLBACK');
          } catch {
            // No transaction left to roll back: the error that ended it is the one to report.
          }
        }
        throw e;
      }
    },
    close: () => {
      if (closed) return;
      closed = true;
      raw.close();
    },
  };
  return db;
}
