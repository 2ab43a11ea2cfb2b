#!/usr/bin/env node
// Standalone: node dist/bench/milter-load-main.js [messagesPerRun]
import { runMilterBench } from './milter-load.js';

const messagesPerRun = Number(process.argv[2]) || 20000;
runMilterBench({ messagesPerRun }).then(
  (r) => {
    console.table(r);
    console.log(JSON.stringify(r, null, 2));
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
