#!/usr/bin/env node
/**
 * `npm run bench`: the milter library bench (trivial application), the SPF evaluator bench and
 * the full-policy bench (real daemon with Knot and slapd), in sequence so they do not compete
 * for CPU. Prints a table per bench, the targets from the issues next to the figures, the load
 * average (figures from a busy machine are not comparable), and finally all figures as JSON.
 * `--json FILE` also writes that JSON to FILE (results are not committed).
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { runMilterBench } from './milter-load.js';
import { runPolicyBench } from './policy-bench.js';
import { runSpfBench } from './spf-bench.js';

const TARGETS = {
  milter: 'CPU <= 40 us/msg, p99 <= 5 ms at 32 conns, RSS <= 120 MiB at 1000 conns',
  spf: 'warm evaluation <= 20 us',
  policy: 'CPU <= 50 us/msg (warm caches), p99 <= 5 ms at 32 conns',
};

function machine(): { loadavg: number[]; cpus: number; cpuModel: string; node: string } {
  const c = cpus();
  return { loadavg: loadavg().map((x) => Math.round(x * 100) / 100), cpus: c.length, cpuModel: c[0]?.model ?? 'unknown', node: process.version };
}

function heading(title: string, target: string): void {
  console.log(`\n== ${title} ==  (load average ${machine().loadavg.join(' ')})`);
  console.log(`   target: ${target}`);
}

async function main(argv: string[]): Promise<void> {
  const jsonIdx = argv.indexOf('--json');
  const jsonPath = jsonIdx >= 0 ? argv[jsonIdx + 1] : undefined;
  const before = machine();
  console.log(`sos-milter benchmarks on ${before.cpus} x ${before.cpuModel}, Node ${before.node}`);

  heading('milter library, trivial application (child process; 10 messages per connection)', TARGETS.milter);
  const milter = await runMilterBench({ concurrency: [1, 32, 128, 1000] });
  console.table(milter);

  heading('SPF evaluator (in-process fake DNS; cold = empty caches, warm = cached answers)', TARGETS.spf);
  const spf = await runSpfBench({ durationMs: 2000 });
  console.table({ cold: spf.cold, warm: spf.warm });
  console.log(`   result ${spf.result}, ${spf.dnsTerms} DNS terms, ${spf.lookupsPerEvaluation} lookups per evaluation`);

  heading('full policy: sos-milter daemon, test mode, regex check, LDAP on, Knot + slapd (warm caches)', TARGETS.policy);
  const policy = await runPolicyBench();
  console.table(policy.levels);
  console.log(
    `   sender mix ${JSON.stringify(policy.mix)}; ${policy.logLinesPerMessage} log lines per judged message; ${policy.warnings} WARN/ERROR lines`,
  );

  const all = { machineBefore: before, machineAfter: machine(), milter, spf, policy };
  console.log('\n' + JSON.stringify(all, null, 2));
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify(all, null, 2) + '\n');
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
