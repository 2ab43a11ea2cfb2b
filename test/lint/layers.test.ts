// The layer and cycle rules of `npm run lint` (.dependency-cruiser.cjs): the repository passes,
// and each rule fails on a deliberate violation in a scratch tree laid out like src/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoPath } from '../support/paths.js';

const CONFIG = repoPath('.dependency-cruiser.cjs');
const DEPCRUISE = repoPath('node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

function cruise(cwd: string): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, [DEPCRUISE, 'src', '--config', CONFIG, '--output-type', 'err'], {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** A scratch tree with a tsconfig and the given files, removed after `body`. */
function withTree(files: Record<string, string>, body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'sos-layers-'));
  try {
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext', strict: true } }));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the repository follows its layers and has no import cycle', () => {
  const { status, output } = cruise(repoPath(''));
  assert.equal(status, 0, output);
});

test('a protocol module that imports the SPF evaluator fails the lint', () => {
  withTree(
    {
      'src/spf/evaluator.ts': 'export const evaluate = (): string => "pass";\n',
      'src/milter/session.ts': 'import { evaluate } from "../spf/evaluator.js";\nexport const run = (): string => evaluate();\n',
    },
    (dir) => {
      const { status, output } = cruise(dir);
      assert.notEqual(status, 0, output);
      assert.match(output, /layer-milter: src\/milter\/session\.ts → src\/spf\/evaluator\.ts/);
    },
  );
});

test('the policy may not read the environment (config)', () => {
  withTree(
    {
      'src/config/config.ts': 'export const mode = "test";\n',
      'src/policy/decide.ts': 'import { mode } from "../config/config.js";\nexport const decide = (): string => mode;\n',
    },
    (dir) => {
      const { status, output } = cruise(dir);
      assert.notEqual(status, 0, output);
      assert.match(output, /layer-policy: src\/policy\/decide\.ts → src\/config\/config\.ts/);
    },
  );
});

test('an import cycle fails the lint, even one made of type-only imports', () => {
  withTree(
    {
      'src/spf/a.ts': 'import type { B } from "./b.js";\nexport interface A { b?: B }\n',
      'src/spf/b.ts': 'import type { A } from "./a.js";\nexport interface B { a?: A }\n',
    },
    (dir) => {
      const { status, output } = cruise(dir);
      assert.notEqual(status, 0, output);
      assert.match(output, /no-circular: src\/spf\/a\.ts →\s+src\/spf\/b\.ts →\s+src\/spf\/a\.ts/);
    },
  );
});

test('a directory under src/ that is not a named layer fails the lint', () => {
  withTree(
    {
      'src/log/logger.ts': 'export const log = (): void => {};\n',
      'src/extras/helper.ts': 'import { log } from "../log/logger.js";\nexport const help = (): void => log();\n',
    },
    (dir) => {
      const { status, output } = cruise(dir);
      assert.notEqual(status, 0, output);
      assert.match(output, /no-layer-unknown: src\/extras\/helper\.ts/);
    },
  );
});
