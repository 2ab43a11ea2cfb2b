#!/usr/bin/env node
// Runs the compiled tests with Node's built-in runner. Node 20's --test takes no globs,
// so the file list is collected here. `unit` limits the run to tests that need no servers.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout, clearTimeout } from 'node:timers';

const root = new URL('../dist/test/', import.meta.url).pathname;
const onlyUnit = process.argv[2] === 'unit';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

let files = collect(root);
if (onlyUnit) files = files.filter((f) => !f.includes('/integration/'));
if (files.length === 0) {
  console.error('no test files found under', root);
  process.exit(1);
}
// A test that never settles fails at --test-timeout. A file whose tests are done but which
// stays alive (a timer or socket left behind by a failed test) would hang the run: the whole run
// is bounded instead, and its process group killed (the runner and every test file it started).
// Not --test-force-exit: on Node 24 it ends files before all their tests have run (a 48-test
// file reported 26-48 tests).
const RUN_LIMIT_MS = Number(process.env.SOS_TEST_RUN_LIMIT_MS ?? 480_000);
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files], { stdio: 'inherit', detached: true });
const killGroup = (signal) => {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
};
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => killGroup(signal));
let timedOut = false;
const limit = setTimeout(() => {
  timedOut = true;
  console.error(`tests: not finished after ${RUN_LIMIT_MS / 1000} s (SOS_TEST_RUN_LIMIT_MS): a test file hangs (the last ones started above); every test process is killed`);
  killGroup('SIGKILL');
}, RUN_LIMIT_MS);
child.on('exit', (code) => {
  clearTimeout(limit);
  // The group, in case a test file outlived the runner.
  killGroup('SIGKILL');
  process.exit(timedOut ? 1 : (code ?? 1));
});
