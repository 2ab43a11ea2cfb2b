// The npm package: licence text, changelog and links present; it holds only what runs, and
// what it holds imports only runtime dependencies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { repoPath } from '../support/paths.js';

const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as {
  license: string;
  version: string;
  repository?: { url?: string };
  bugs?: { url?: string };
  dependencies: Record<string, string>;
};

/** Files `npm pack` would publish, from the compiled tree as it is (no prepack build here). */
function packedFiles(): string[] {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoPath('.'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
}

test('licence text, changelog, repository and bugs', () => {
  assert.equal(pkg.license, 'GPL-3.0-or-later');
  const licence = readFileSync(repoPath('LICENSE'), 'utf8');
  assert.match(licence, /GNU GENERAL PUBLIC LICENSE\s+Version 3, 29 June 2007/);
  assert.match(licence, /END OF TERMS AND CONDITIONS/);
  assert.ok(licence.length > 30_000, 'the full text');
  assert.match(readFileSync(repoPath('CHANGELOG.md'), 'utf8'), new RegExp(`^## \\[${pkg.version.replaceAll('.', '\\.')}\\]`, 'm'));
  assert.match(pkg.repository?.url ?? '', /^git\+https:\/\//);
  assert.match(pkg.bugs?.url ?? '', /^https:\/\//);
});

test('the package holds only what runs, and that imports only runtime dependencies', () => {
  const files = packedFiles();
  assert.ok(files.includes('dist/src/cli/main.js'), 'the command');
  for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json']) assert.ok(files.includes(f), f);
  const stray = files.filter((f) => /^(dist\/)?(test|bench|scripts|deploy)\//.test(f) || f.endsWith('.map') || f.endsWith('.ts') || /spf\/testing\/|cli\/spf-suite/.test(f));
  assert.deepEqual(stray, []);
  const builtins = new Set(builtinModules);
  for (const f of files.filter((x) => x.endsWith('.js'))) {
    const text = readFileSync(repoPath(f), 'utf8');
    for (const m of text.matchAll(/^import\s[^'"]*['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      assert.ok(name in pkg.dependencies, `${f} imports ${name}, which is not a runtime dependency`);
    }
  }
});
