// The Dockerfile and what it builds from: checked statically (the CI machine has no container
// runtime), and the image's build configuration compiled and started for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerfileUser } from './pod-security.js';
import { freePort } from '../support/postfix.js';
import { repoPath } from '../support/paths.js';
import { waitFor } from '../support/wait.js';

const dockerfile = readFileSync(repoPath('Dockerfile'), 'utf8');
/** Instructions with continuation lines joined. */
const instructions = dockerfile.replace(/\\\n\s*/g, ' ').split('\n').filter((l) => /^[A-Z]+\s/.test(l));
const of = (name: string): string[] => instructions.filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());

test('the image runs as a numeric non-root user and exposes the milter and metrics ports', () => {
  assert.match(dockerfileUser(dockerfile) ?? '', /^[1-9]\d*:[1-9]\d*$/);
  assert.deepEqual(of('EXPOSE').join(' ').split(/\s+/).sort(), ['8020', '9100']);
  assert.match(dockerfile, /METRICS_LISTEN=:9100/);
});

test('the HEALTHCHECK runs `sos-milter health` in exec form: no shell, no curl, no port written', () => {
  const check = of('HEALTHCHECK').join('');
  const cmd = /\bCMD (\[.*\])$/.exec(check)?.[1];
  assert.ok(cmd, `exec form: ${check}`);
  const argv = JSON.parse(cmd) as string[];
  const entrypoint = JSON.parse(of('ENTRYPOINT')[0]!) as string[];
  assert.deepEqual(argv, [...entrypoint, 'health'], 'the image\'s own program, command health');
  assert.doesNotMatch(check, /9100|127\.0\.0\.1|curl|wget|fetch/, 'the address comes from the environment (test/deploy/health.test.ts runs it)');
  // Docker's --timeout must leave the command its own timeout (2 s by default) and node's start.
  assert.match(check, /--timeout=([5-9]|\d\d+)s\b/);
});

test('the base image is pinned by tag and digest, the same Node major as the tests run on', () => {
  const image = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1] ?? '';
  const m = /^node:(\d+)\.(\d+)\.(\d+)-bookworm-slim@sha256:[0-9a-f]{64}$/.exec(image);
  assert.ok(m, `pinned image: ${image}`);
  const testScript = readFileSync(repoPath('scripts/test.sh'), 'utf8');
  assert.match(testScript, new RegExp(`^NODE24_VERSION=${m[1]}\\.${m[2]}\\.${m[3]}$`, 'm'), 'scripts/test.sh tests the image\'s Node version');
  assert.ok(of('FROM').every((f) => f.startsWith('${NODE_IMAGE}')));
});

test('OCI labels name source, version and licence', () => {
  const labels = of('LABEL').join(' ');
  for (const key of ['source', 'version', 'licenses', 'title']) assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${key}=`));
  const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { version: string; license: string };
  assert.match(labels, new RegExp(`licenses="${pkg.license}"`));
  assert.match(dockerfile, new RegExp(`^ARG VERSION=${pkg.version.replaceAll('.', '\\.')}$`, 'm'));
});

test('the build stage compiles src only, and what it builds starts and serves /healthz', async () => {
  assert.ok(!/COPY (test|bench)/.test(dockerfile), 'no tests or benchmarks in the build');
  const config = /RUN npx tsc -p (\S+)/.exec(dockerfile)?.[1];
  assert.equal(config, 'deploy/container/tsconfig.build.json');
  const out = mkdtempSync(join(tmpdir(), 'sos-image-'));
  try {
    const tsc = spawnSync(process.execPath, [repoPath('node_modules/typescript/bin/tsc'), '-p', repoPath(config), '--outDir', join(out, 'dist')], { encoding: 'utf8' });
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
    assert.ok(!existsSync(join(out, 'dist/test')) && !existsSync(join(out, 'dist/bench')), 'only src is compiled');
    assert.ok(existsSync(join(out, 'dist/src/cli/main.js')));
    // Laid out as in the image (/app): package.json beside dist, dependencies beside them.
    cpSync(repoPath('package.json'), join(out, 'package.json'));
    symlinkSync(repoPath('node_modules'), join(out, 'node_modules'));
    const port = await freePort();
    const child = spawn(process.execPath, [join(out, 'dist/src/cli/main.js')], {
      env: { PATH: process.env.PATH, MILTER_SOCKET: `inet:${await freePort()}@127.0.0.1`, METRICS_LISTEN: `127.0.0.1:${port}`, DNS_SERVERS: '127.0.0.1:9' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    try {
      const status = await waitFor(() => (child.exitCode === null ? fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 0) : -1), {
        timeoutMs: 15_000,
        intervalMs: 100,
        what: "/healthz of the image's build",
        until: (s) => s === 200 || s === -1,
      });
      assert.equal(status, 200, `/healthz of the image's build (exit ${child.exitCode})`);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('.dockerignore keeps what the build does not use out of the context', () => {
  const ignored = readFileSync(repoPath('.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const p of ['node_modules', 'dist', '.git', 'test', 'bench', '.env']) assert.ok(ignored.includes(p), p);
  for (const copied of of('COPY').filter((c) => !c.startsWith('--from=')).flatMap((c) => c.split(/\s+/).slice(0, -1))) {
    assert.ok(!ignored.includes(copied.split('/')[0]!), `${copied} is copied but ignored`);
  }
});
