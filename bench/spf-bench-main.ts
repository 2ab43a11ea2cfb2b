#!/usr/bin/env node
// Standalone: node dist/bench/spf-bench-main.js [durationMs]
import { runSpfBench } from './spf-bench.js';

const durationMs = Number(process.argv[2]) || 2000;
runSpfBench({ durationMs }).then(
  (r) => console.log(JSON.stringify(r, null, 2)),
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
