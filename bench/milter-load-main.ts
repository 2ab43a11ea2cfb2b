#!/usr/bin/env node
// Standalone: node dist/bench/milter-load-main.js [messagesPerRun]
// Environment: MILTER_BENCH_CHILD=floor (bare responder), MILTER_BENCH_SOCKET=unix, MILTER_BENCH_CHILD_ARGS.
import { runMilterBench } from './milter-load.js';

const messagesPerRun = Number(process.argv[2]) || 20000;
runMilterBench({ messagesPerRun }).then(
  (r) => {
    console.log(`child: ${process.env['MILTER_BENCH_CHILD'] ?? 'milter'}, socket: ${process.env['MILTER_BENCH_SOCKET'] ?? 'inet'}`);
    console.table(r);
    console.log(JSON.stringify(r, null, 2));
  },
  (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  },
);
