#!/usr/bin/env node
/**
 * Runs RFC 7208 conformance-suite files through the SPF evaluator:
 *   node dist/test/support/spf/spf-suite.js (npm run spf-suite -- FILE.yml) FILE.yml [FILE.yml …]
 * Prints each failure, then "N passed, M failed". Exit 0 when all pass, 1 on any failure,
 * 2 when an input cannot be read or is not in the suite format.
 */
import { readFile } from 'node:fs/promises';
import { describeFailure, loadSuite, runSuite, type SuiteScenario } from './suite-runner.js';

async function main(files: string[]): Promise<number> {
  if (files.length === 0) {
    console.error('usage: spf-suite FILE.yml [FILE.yml …]');
    return 2;
  }
  const loaded: { file: string; scenarios: SuiteScenario[] }[] = [];
  for (const file of files) {
    try {
      loaded.push({ file, scenarios: loadSuite(await readFile(file, 'utf8')) });
    } catch (e) {
      console.error(`${file}: ${e instanceof Error ? e.message : String(e)}`);
      return 2;
    }
  }
  let passed = 0;
  let failed = 0;
  for (const { file, scenarios } of loaded) {
    const report = await runSuite(scenarios);
    for (const o of report.outcomes) if (!o.ok) console.log(`${files.length > 1 ? `${file}: ` : ''}${describeFailure(o)}`);
    passed += report.passed;
    failed += report.failed;
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 2;
  },
);
