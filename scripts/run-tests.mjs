#!/usr/bin/env node
// Runs the compiled tests with Node's built-in runner. Node 20's --test takes no globs,
// so the file list is collected here. `unit` limits the run to tests that need no servers.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

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
// A file whose tests are done exits even if a failed test left a timer or socket behind
// (--test-force-exit, Node >= 20.14): a failure must be reported, never turn into a hung CI.
// No single test takes minutes; one that never settles fails at --test-timeout.
const [major, minor] = process.versions.node.split('.').map(Number);
const safety = major > 20 || (major === 20 && minor >= 14) ? ['--test-force-exit', '--test-timeout=300000'] : ['--test-timeout=300000'];
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...safety, ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
