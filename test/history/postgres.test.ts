/**
 * The history store on a real PostgreSQL (a private cluster on a loopback port, started with
 * Debian's postgresql binaries; as root through runuser, since postgres refuses to run as root).
 * The same scenario as on SQLite: change sets over three runs, the outbox, a dry run, and a
 * second store waiting for the first's advisory lock. Skips with the reason when no server can run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
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

describe('history on PostgreSQL', { skip, timeout: 120_000 }, () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sos-pg-'));
    chmodSync(dir, 0o777);
    const as = (cmd: string, args: string[]) => (asRoot ? spawnSync('/usr/sbin/runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', timeout: 60_000 }) : spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 }));
    const data = join(dir, 'data');
    const init = as(join(BIN!, 'initdb'), ['-D', data, '-U', 'sos', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    assert.equal(init.status, 0, init.stderr);
    const port = await freePort();
    const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'];
    server = asRoot ? spawn('/usr/sbin/runuser', ['-u', 'postgres', '--', join(BIN!, 'postgres'), ...args], { stdio: 'ignore' }) : spawn(join(BIN!, 'postgres'), args, { stdio: 'ignore' });
    url = `postgresql://sos@127.0.0.1:${port}/postgres`;
    for (let i = 0; i < 200; i++) {
      try {
        const s = await openHistory(url);
        await s.close();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error('postgres did not start');
  });
  after(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGINT');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

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
