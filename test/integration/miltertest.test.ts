// Runs the Lua scripts in test/miltertest/ with miltertest (an independent MTA-side
// implementation from OpenDKIM) against the milter library serving the test application.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MilterServer } from '../../src/milter/index.js';
import { createTestMilterApp, type TestMilterApp } from '../support/test-milter-app.js';

const MILTERTEST = '/usr/bin/miltertest';
// The scripts are kept in the source tree (dist/ has only compiled TypeScript).
const SCRIPT_DIR = fileURLToPath(new URL('../../../test/miltertest/', import.meta.url));
const skip = existsSync(MILTERTEST) ? false : 'miltertest is not installed (Debian package miltertest)';
const scripts = existsSync(SCRIPT_DIR)
  ? readdirSync(SCRIPT_DIR)
      .filter((f) => f.endsWith('.lua') && f !== 'common.lua')
      .sort()
  : [];

interface RunResult {
  code: number | null;
  output: string;
}

function runScript(script: string, socket: string): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      MILTERTEST,
      ['-D', `socket=${socket}`, '-D', `MT_DIR=${SCRIPT_DIR.replace(/\/$/, '')}`, '-s', join(SCRIPT_DIR, script)],
      { timeout: 30_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

function assertPassed(script: string, r: RunResult): void {
  assert.equal(r.code, 0, `miltertest ${script} failed (exit ${r.code}):\n${r.output}`);
  assert.match(r.output, /^PASS$/m, `miltertest ${script} did not reach its end:\n${r.output}`);
}

describe('miltertest scripts against the milter library', { skip }, () => {
  let app: TestMilterApp;
  let inet: MilterServer;
  let inetSpec = '';

  before(async () => {
    app = createTestMilterApp();
    inet = new MilterServer(app.app, { socket: 'inet:0@127.0.0.1' });
    const bound = await inet.listen();
    assert.equal(bound.kind, 'inet');
    if (bound.kind === 'inet') inetSpec = `inet:${bound.port}@127.0.0.1`;
  });

  after(async () => {
    await inet?.close({ deadlineMs: 1000 });
  });

  test('the script directory holds scripts', () => {
    assert.ok(scripts.length >= 5, `expected the Lua scripts in ${SCRIPT_DIR}, found ${scripts.join(', ')}`);
  });

  for (const script of scripts) {
    test(script, async () => {
      app.reset();
      assertPassed(script, await runScript(script, inetSpec));
    });
  }

  test('transaction.lua: the application saw every stage with the values sent', async () => {
    app.reset();
    assertPassed('transaction.lua', await runScript('transaction.lua', inetSpec));
    const [s] = app.sessions;
    assert.ok(s);
    assert.deepEqual(
      { hostname: s.connect?.hostname, family: s.connect?.family, address: s.connect?.address },
      { hostname: 'client.example.test', family: 'inet', address: '192.0.2.10' },
    );
    assert.equal(s.connect?.macros['client_addr'], '192.0.2.10');
    assert.equal(s.helo, 'client.example.test');
    const [m] = s.messages;
    assert.ok(m);
    assert.equal(m.sender, '<alice@example.org>');
    assert.deepEqual(m.mailArgs, ['SIZE=1234', 'BODY=8BITMIME']);
    assert.deepEqual(
      m.rcpts.map((r) => [r.address, r.args]),
      [
        ['<bob@example.net>', []],
        ['<carol@example.com>', ['NOTIFY=NEVER']],
      ],
    );
    assert.equal(m.dataSeen, true);
    assert.equal(m.eohSeen, true);
    assert.deepEqual(m.headers, [
      ['From', 'Alice <alice@example.org>'],
      ['Subject', 'hello'],
      ['X-Empty', ''],
    ]);
    assert.equal(m.bodyBytes, Buffer.byteLength('line one\r\n.line two\r\n'));
    assert.equal(s.closed, true);
  });

  test('a script over a UNIX socket', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'sos-miltertest-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'milter.sock');
    const unix = new MilterServer(app.app, { socket: `unix:${path}` });
    await unix.listen();
    try {
      app.reset();
      assertPassed('multi.lua', await runScript('multi.lua', `unix:${path}`));
      assert.equal(app.sessions.length, 1);
      assert.deepEqual(
        app.sessions[0]?.messages.map((m) => m.verdict?.stage ?? 'accepted'),
        ['accepted', 'eom', 'envfrom', 'accepted', 'accepted'],
      );
    } finally {
      await unix.close({ deadlineMs: 1000 });
    }
    assert.equal(existsSync(path), false, 'socket file removed on close');
  });
});
