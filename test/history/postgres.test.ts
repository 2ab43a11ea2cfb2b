/**
 * The history store on a real PostgreSQL (a private cluster on a loopback port, started with
 * Debian's postgresql binaries; as root through runuser, since postgres refuses to run as root).
 * The same scenario as on SQLite: change sets over three runs, the outbox, a dry run, and a
 * second store waiting for the first's advisory lock. Skips with the reason when no server can run.
 * Every wait is bounded (the hooks' timeouts, the start-up deadline, the stop): a broken server
 * fails the suite, it never hangs it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHistory } from '../../src/history/open.js';
import type { DomainOutcome } from '../../src/history/types.js';
import type { RunInput } from '../../src/history/store.js';
import { freePort } from '../support/slapd.js';

const BIN = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'].find((d) => existsSync(join(d, 'initdb')));
const asRoot = process.getuid?.() === 0;
const skip = BIN === undefined ? 'PostgreSQL server binaries not installed (Debian package postgresql)' : asRoot && !existsSync('/usr/sbin/runuser') ? 'runuser missing' : false;

function outcome(domain: string, status: DomainOutcome['status']): DomainOutcome {
  return { domain, status, result: status, unknown: false, record: 'v=spf1 -all', reason: 'r', suggested: null, remedy: null, lookups: null, contacts: [] };
}
const run = (outcomes: DomainOutcome[], at: number): RunInput => ({ startedAt: new Date(at), finishedAt: new Date(at + 1), outcomes, recipients: () => [{ channel: 'webhook', recipient: '' }] });
const names = (xs: { domain: string }[]) => xs.map((x) => x.domain).sort();

/** Resolves with what `p` gave, or with `fallback` after `ms`: every wait here is bounded. */
function within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms)))]).finally(() => clearTimeout(timer));
}

describe('history on PostgreSQL', { skip, timeout: 120_000 }, () => {
  let dir: string;
  let data: string;
  let server: ChildProcess | undefined;
  let serverLog = '';
  let url: string;
  // As root the server runs under runuser, which blocks SIGINT (it leaves terminal signals to
  // the foreground process group) and answers SIGTERM by killing its child after 2 s: a signal to
  // it does not stop PostgreSQL cleanly. pg_ctl stop does, and the postmaster's PID file is the
  // last resort. (An `after` hook that sent SIGINT to runuser and awaited its exit hung the suite.)
  const as = (cmd: string, args: string[]) =>
    asRoot ? spawnSync('/usr/sbin/runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', timeout: 60_000 }) : spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sos-pg-'));
    chmodSync(dir, 0o777);
    data = join(dir, 'data');
    const init = as(join(BIN!, 'initdb'), ['-D', data, '-U', 'sos', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    assert.equal(init.status, 0, init.stderr);
    const port = await freePort();
    const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'];
    const stdio: ['ignore', 'ignore', 'pipe'] = ['ignore', 'ignore', 'pipe'];
    server = asRoot ? spawn('/usr/sbin/runuser', ['-u', 'postgres', '--', join(BIN!, 'postgres'), ...args], { stdio }) : spawn(join(BIN!, 'postgres'), args, { stdio });
    server.stderr!.on('data', (chunk: Buffer) => (serverLog = (serverLog + chunk.toString()).slice(-4000)));
    url = `postgresql://sos@127.0.0.1:${port}/postgres`;
    const deadline = Date.now() + 60_000;
    let last: unknown;
    while (Date.now() < deadline && server.exitCode === null && server.signalCode === null) {
      try {
        const s = await openHistory(url);
        await s.close();
        return;
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`postgres did not start (${server.exitCode !== null || server.signalCode !== null ? `exited ${server.exitCode ?? server.signalCode}` : 'not ready in 60 s'}; last: ${String(last)}):\n${serverLog}`);
  }, { timeout: 90_000 });

  after(async () => {
    const s = server;
    try {
      if (s && s.exitCode === null && s.signalCode === null) {
        const exited = new Promise<boolean>((r) => s.once('exit', () => r(true)));
        // -w: pg_ctl returns once the server is down, and runuser exits with it.
        const stop = as(join(BIN!, 'pg_ctl'), ['-D', data, 'stop', '-m', 'fast', '-w', '-t', '20']);
        if (!(stop.status === 0 && (await within(exited, 10_000, false)))) {
          // pg_ctl failed (its output says why): kill the postmaster itself, then its runuser.
          const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
          if (pid > 0) process.kill(pid, 'SIGKILL');
          s.kill('SIGKILL');
          await within(exited, 5_000, false);
          assert.fail(`pg_ctl stop did not stop the server: ${stop.status ?? stop.signal ?? String(stop.error)} ${stop.stderr ?? ''}`);
        }
      }
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }, { timeout: 60_000 });

  test('three runs: exact change sets and one notification per change; a dry run writes nothing', async () => {
    const store = await openHistory(url, { keepRuns: 2 });
    try {
      const r1 = await store.commitRun(run([outcome('a.test', 'pass'), outcome('b.test', 'fail')], 1_000));
      assert.deepEqual(names(r1.changes.newlyBroken), ['b.test']);
      const dry = await store.commitRun(run([outcome('a.test', 'fail'), outcome('b.test', 'pass')], 1_500), { dryRun: true });
      assert.deepEqual([names(dry.changes.newlyBroken), names(dry.changes.fixed)], [['a.test'], ['b.test']]);
      assert.equal(await store.pendingCount(), 1, 'the dry run queued nothing');
      const r2 = await store.commitRun(run([outcome('a.test', 'fail'), outcome('b.test', 'fail')], 2_000));
      assert.deepEqual([names(r2.changes.newlyBroken), names(r2.changes.stillBroken)], [['a.test'], ['b.test']]);
      assert.equal(r2.changes.stillBroken[0]!.since, r1.changes.newlyBroken[0]!.since);
      const r3 = await store.commitRun(run([outcome('a.test', 'fail'), outcome('b.test', 'pass')], 3_000));
      assert.deepEqual([names(r3.changes.fixed), names(r3.changes.stillBroken), r3.queued], [['b.test'], ['a.test'], 1]);
      const r4 = await store.commitRun(run([outcome('a.test', 'fail'), outcome('b.test', 'pass')], 4_000));
      assert.equal(r4.queued, 0);
      const pending = await store.pending(10);
      assert.deepEqual(pending.map((p) => [p.domain, p.payload.event]), [['b.test', 'spf.newly_broken'], ['a.test', 'spf.newly_broken'], ['b.test', 'spf.fixed']]);
      await store.markSent(pending[0]!.id, new Date());
      await store.markFailed(pending[1]!.id, 'down', false);
      assert.equal(await store.pendingCount(), 2);
    } finally {
      await store.close();
    }
  });

  test('a second replica waits for the first one\'s lock', async () => {
    const first = await openHistory(url);
    let opened = false;
    const second = openHistory(url).then((s) => ((opened = true), s));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(opened, false, 'blocked while the first holds the advisory lock');
    await first.close();
    const s = await second;
    assert.equal(opened, true);
    await s.close();
  });
});
