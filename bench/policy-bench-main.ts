#!/usr/bin/env node
// Standalone: node dist/bench/policy-bench-main.js [messagesPerRun] [cpuProfileDir]
import { runPolicyBench } from './policy-bench.js';

const messagesPerRun = Number(process.argv[2]) || 20000;
const cpuProfileDir = process.argv[3];
runPolicyBench({ messagesPerRun, cpuProfileDir }).then(
  (r) => {
    console.table(r.levels);
    console.log(JSON.stringify(r, null, 2));
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
