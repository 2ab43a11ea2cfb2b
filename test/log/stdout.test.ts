/**
 * The logger on a real stdout (a child process, stdout-child.ts): lines arrive while the
 * process runs (buffered for at most the flush interval), all of them at exit and at
 * flushLogger; a stdout that does not keep up loses the newest lines, counted and reported,
 * instead of growing the buffer; under systemd with stdout on the journal (JOURNAL_STREAM
 * naming stdout's device and inode) lines carry sd-daemon priorities, and not otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isJournalStream } from '../../src/log/journal.js';

const CHILD = fileURLToPath(new URL('./stdout-child.js', import.meta.url));
/** Upper bound for any child to finish; the scenarios take well under a second when idle. */
const CHILD_DEADLINE_MS = 30_000;

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
}

function run(args: string[], options: { env?: NodeJS.ProcessEnv; stdio?: StdioOptions } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], { env: options.env ?? envWithoutJournal(), stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_DEADLINE_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}

function envWithoutJournal(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.JOURNAL_STREAM;
  return env;
}

test('a line reaches stdout while the process runs, without waiting for more lines or exit', async () => {
  const child = spawn(process.execPath, [CHILD, 'prompt'], { env: envWithoutJournal(), stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let got = '';
      const timer = setTimeout(() => reject(new Error(`no line within ${CHILD_DEADLINE_MS} ms`)), CHILD_DEADLINE_MS);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        got += d;
        if (got.includes('\n')) {
          clearTimeout(timer);
          resolve(got);
        }
      });
      child.on('exit', () => reject(new Error('child exited before its line arrived')));
    });
    const at = Number(/ at=(\d+)/.exec(line)?.[1]);
    const delay = Date.now() - at;
    // The flush interval is 100 ms; the bound leaves room for a loaded machine.
    assert.ok(delay < 2000, `line arrived after ${delay} ms`);
    assert.match(line, /^\S+ INFO child: prompt line at=\d+\n$/);
  } finally {
    child.kill();
  }
});

test('every line is written when the process exits right after logging', async () => {
  for (const format of ['text', 'json']) {
    const { stdout, code } = await run(['exit', format]);
    assert.equal(code, 0);
    const lines = stdout.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 20_000, format);
    assert.match(lines.at(-1)!, /19999/);
  }
});

test('flushLogger writes out buffered lines before what follows it', async () => {
  const { stdout } = await run(['flush']);
  assert.match(stdout, /^(\S+ INFO child: before mark i=\d\n){3}MARK\n$/);
});

test('a stdout that does not keep up loses the newest lines, counted in a notice, not memory', async () => {
  const child = spawn(process.execPath, [CHILD, 'drop', 'json'], { env: envWithoutJournal(), stdio: ['pipe', 'pipe', 'pipe'] });
  const deadline = setTimeout(() => child.kill('SIGKILL'), CHILD_DEADLINE_MS);
  let stdout = '';
  const done = new Promise<number | null>((resolve) => child.on('close', resolve));
  await new Promise<void>((resolve) => {
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('burst done')) resolve();
    });
    child.on('exit', () => resolve());
  });
  // Only now is stdout read: until here the child found its pipe full.
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stdin.end('go\n');
  const code = await done;
  clearTimeout(deadline);
  assert.equal(code, 0);
  const records = stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { msg: string; i?: number; dropped?: number; level: string });
  const burst = records.filter((r) => r.msg === 'burst').map((r) => r.i);
  const notice = records.find((r) => r.msg === 'log lines dropped: stdout did not keep up');
  assert.ok(notice, 'a notice says lines were lost');
  assert.equal(notice.level, 'warn');
  assert.ok(burst.length < 15_000 && burst.length > 1000, `${burst.length} burst lines arrived`);
  assert.deepEqual(burst, [...Array(burst.length).keys()], 'the oldest lines arrive in order, the newest are dropped');
  assert.equal(notice.dropped, 15_000 - burst.length);
  assert.ok(records.some((r) => r.msg === 'after'));
});

test('journal detection compares JOURNAL_STREAM with the device and inode of the descriptor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-log-'));
  const fd = openSync(join(dir, 'out'), 'w');
  const other = openSync(join(dir, 'other'), 'w');
  try {
    const st = fstatSync(fd, { bigint: true });
    assert.equal(isJournalStream({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, fd), true);
    assert.equal(isJournalStream({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, other), false, 'another file');
    assert.equal(isJournalStream({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }, fd), false, 'another inode');
    assert.equal(isJournalStream({}, fd), false, 'not set');
    assert.equal(isJournalStream({ JOURNAL_STREAM: '' }, fd), false, 'empty');
    assert.equal(isJournalStream({ JOURNAL_STREAM: `${st.dev}:${st.ino}x` }, fd), false, 'malformed');
    assert.equal(isJournalStream({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, 987_654), false, 'closed descriptor');
  } finally {
    closeSync(fd);
    closeSync(other);
    rmSync(dir, { recursive: true });
  }
});

/** Runs the `levels` scenario with stdout on a file and JOURNAL_STREAM naming `journal` (or that file). */
async function levelsWithJournal(format: string, journal: 'stdout' | 'other' | 'unset'): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sos-log-'));
  const path = join(dir, 'stdout');
  const fd = openSync(path, 'w');
  const otherFd = openSync(join(dir, 'other'), 'w');
  try {
    const st = fstatSync(journal === 'other' ? otherFd : fd, { bigint: true });
    const env = envWithoutJournal();
    if (journal !== 'unset') env.JOURNAL_STREAM = `${st.dev}:${st.ino}`;
    const { code, stderr } = await run(['levels', format], { env, stdio: ['ignore', fd, 'pipe'] });
    assert.equal(code, 0, stderr);
    return readFileSync(path, 'utf8');
  } finally {
    closeSync(fd);
    closeSync(otherFd);
    rmSync(dir, { recursive: true });
  }
}

test('under systemd with stdout on the journal, lines carry <7> <6> <4> <3> priorities', async () => {
  const text = await levelsWithJournal('text', 'stdout');
  assert.match(text, /^<7>\S+ DEBUG child: at debug\n<6>\S+ INFO child: at info\n<4>\S+ WARN child: at warn\n<3>\S+ ERROR child: at error\n$/);
  const json = await levelsWithJournal('json', 'stdout');
  const lines = json.split('\n').filter((l) => l !== '');
  assert.deepEqual(
    lines.map((l) => l.slice(0, 3)),
    ['<7>', '<6>', '<4>', '<3>'],
  );
  // journald strips the prefix; what remains is the JSON line.
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l.slice(3)) as { level: string }).level),
    ['debug', 'info', 'warn', 'error'],
  );
});

test('no priority prefix when JOURNAL_STREAM names another stream or is not set', async () => {
  for (const journal of ['other', 'unset'] as const) {
    const text = await levelsWithJournal('text', journal);
    assert.match(text, /^\S+ DEBUG child: at debug\n\S+ INFO child: at info\n/, journal);
    assert.ok(!text.includes('<'), journal);
  }
});
