#!/usr/bin/env node
/**
 * `npm run bench`: sos-milter side by side with a bare Node responder (bench/side-by-side.ts),
 * the daemon's latency with and without a /metrics scrape flood (bench/scrape-flood.ts), then
 * the SPF evaluator bench, the audit of 5,000 own domains (bench/audit-bench.ts), and the
 * daemon's CPU per message with DMARC_CHECK=on against off (bench/dmarc-bench.ts), and the
 * daemon's CPU per message with MILTER_MODE=rewrite (SRS) against reject, on traffic where every
 * message is a violation and on a mix with 1 violation in 10 (bench/rewrite-bench.ts).
 * Prints the figures with the targets of issue 8 beside them, the load average (figures from a
 * busy machine are not comparable), and all figures as JSON.
 *
 *   node dist/bench/run.js [--json FILE] [--reps N] [--quick] [--part NAME[,NAME...]]
 *
 * --part runs only the named parts: side-by-side, scrape, spf, audit, dmarc, rewrite (default: all).
 * --json FILE also writes the JSON to FILE (results are not committed); --reps sets the
 * interleaved repetitions (default 5); --quick is a smoke run (1 repetition, small levels, 20
 * idle sessions) whose figures mean nothing. The whole run is bounded: past 9 minutes it stops.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { benchHeapFlags, runSideBySide, CONNECTIONS, MESSAGES_PER_CONNECTION, PACED_RATE, type Level, type SideBySideResult } from './side-by-side.js';
import { killChildren } from './servers.js';
import { runSpfBench } from './spf-bench.js';
import { AUDIT_TARGET, runAuditBench } from './audit-bench.js';
import { runScrapeFlood, type ScrapeFloodResult } from './scrape-flood.js';
import { DMARC_TARGET_RATIO, runDmarcBench, type DmarcBenchResult } from './dmarc-bench.js';
import { REWRITE_TARGET_RATIO, runRewriteBench, type RewriteBenchResult, type RewriteLevel } from './rewrite-bench.js';

const PARTS = ['side-by-side', 'scrape', 'spf', 'audit', 'dmarc', 'rewrite'] as const;
type Part = (typeof PARTS)[number];

/** Issue 8, item 6, on the 2-core development VM. */
export const TARGETS = {
  closedRatio: 1.3,
  closedCpuUs: 46,
  pacedRatio: 1.6,
  pacedP99Ms: 2,
  rssMiB: 80,
  spfWarmUs: 20,
  /** Issue 16: CPU per message with DMARC_CHECK=on over off. */
  dmarcCpuRatio: DMARC_TARGET_RATIO,
  /** Issue 15: CPU per message with MILTER_MODE=rewrite over reject, every message a violation. */
  rewriteCpuRatio: REWRITE_TARGET_RATIO,
};

const HARD_LIMIT_MS = 9 * 60_000;

function machine(): { loadavg: number[]; cpus: number; cpuModel: string; node: string } {
  const c = cpus();
  return { loadavg: loadavg().map((x) => Math.round(x * 100) / 100), cpus: c.length, cpuModel: c[0]?.model ?? 'unknown', node: process.version };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number, digits = 1): string => (Math.round(x * 10 ** digits) / 10 ** digits).toString();
/** Median with the range over repetitions: "58 (55-61)". */
function spread(xs: number[], digits = 1): string {
  if (xs.length === 0) return '-';
  if (xs.length === 1) return fmt(xs[0]!, digits);
  return `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}-${fmt(Math.max(...xs), digits)})`;
}
const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT MET');

function levelTable(title: string, level: Level, closed: boolean): void {
  console.log(`\n${title}`);
  const cols = ['', 'CPU us/msg', 'user us/msg', closed ? 'messages/s' : 'achieved/s', 'p50 ms', 'p99 ms', 'client loop p99 ms', 'client us/msg'];
  const row = (name: string, rs: SideBySideResult['closed']['node']): string[] => [
    name,
    spread(rs.map((r) => r.cpuUsPerMessage)),
    spread(rs.map((r) => r.userUsPerMessage)),
    spread(rs.map((r) => r.messagesPerSec), 0),
    spread(rs.map((r) => r.p50Ms), 2),
    spread(rs.map((r) => r.p99Ms), 2),
    spread(rs.map((r) => r.clientLoopDelayP99Ms), 2),
    spread(rs.map((r) => r.clientCpuUsPerMessage)),
  ];
  const ratio = (pick: (r: SideBySideResult['closed']['node'][number]) => number): string =>
    spread(level.sos.map((r, i) => pick(r) / Math.max(1e-9, pick(level.node[i]!))), 2) + 'x';
  const rows = [
    cols,
    row('bare Node', level.node),
    row('sos-milter', level.sos),
    ['ratio', spread(level.cpuRatio, 2) + 'x', ratio((r) => r.userUsPerMessage), ratio((r) => r.messagesPerSec), ratio((r) => r.p50Ms), ratio((r) => r.p99Ms), '', ''],
  ];
  const widths = cols.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log('  ' + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
}

function printSideBySide(r: SideBySideResult, reps: number): void {
  console.log(`   both negotiated actions ${r.negotiated.actions}, protocol ${r.negotiated.protocol}; ${MESSAGES_PER_CONNECTION} messages per connection`);
  console.log(`   both run with node ${benchHeapFlags().join(' ') || "(V8's default heap sizing)"} (SOS_BENCH_V8_FLAGS replaces them)`);
  console.log(`   figures: median (min-max) over ${reps} interleaved repetitions; ratio = sos-milter / bare Node, paired per repetition`);
  levelTable(`closed loop, ${CONNECTIONS} connections`, r.closed, true);
  levelTable(`paced, ${PACED_RATE} messages/s over ${CONNECTIONS} connections`, r.paced, false);
  console.log('\nRSS');
  for (const [key, name] of [['node', 'bare Node'], ['sos', 'sos-milter']] as const) {
    const m = r.rss[key];
    console.log(`  ${name.padEnd(10)}  ${fmt(m.rssMiB)} MiB after ${m.afterMessages} messages (${m.afterMessages >= 100_000 ? "at least 100,000" : "FEWER than 100,000"}; peak ${fmt(m.peakRssMiB)} MiB); ${fmt(m.idle.rssMiB)} MiB with ${m.idle.sessions} idle sessions`);
  }
  const closedCpu = median(r.closed.sos.map((x) => x.cpuUsPerMessage));
  const closedRatio = median(r.closed.cpuRatio);
  const pacedRatio = median(r.paced.cpuRatio);
  const pacedP99 = median(r.paced.sos.map((x) => x.p99Ms));
  const rssAfter = r.rss.sos.rssMiB;
  const rssIdle = r.rss.sos.idle.rssMiB;
  console.log('\ntargets (issue 8), sos-milter, medians:');
  console.log(`  closed loop:  ${fmt(closedRatio, 2)}x bare Node (target <= ${TARGETS.closedRatio}x) ${verdict(closedRatio <= TARGETS.closedRatio)}; ${fmt(closedCpu)} us/msg (target <= ${TARGETS.closedCpuUs}) ${verdict(closedCpu <= TARGETS.closedCpuUs)}`);
  console.log(`  paced:        ${fmt(pacedRatio, 2)}x bare Node (target <= ${TARGETS.pacedRatio}x) ${verdict(pacedRatio <= TARGETS.pacedRatio)}; p99 ${fmt(pacedP99, 2)} ms (target <= ${TARGETS.pacedP99Ms}) ${verdict(pacedP99 <= TARGETS.pacedP99Ms)}`);
  console.log(`  RSS:          ${fmt(rssAfter)} MiB after ${r.rss.sos.afterMessages} messages, ${fmt(rssIdle)} MiB with ${r.rss.sos.idle.sessions} sessions (target <= ${TARGETS.rssMiB}) ${verdict(rssAfter <= TARGETS.rssMiB && rssIdle <= TARGETS.rssMiB)}`);
  console.log(`  daemon log: ${r.logLinesPerMessage} lines per judged message; ${r.unexpectedWarnings.count} unexpected WARN/ERROR lines${r.unexpectedWarnings.count ? ': ' + r.unexpectedWarnings.examples.join(' | ') : ''}`);
}

function printScrapeFlood(r: ScrapeFloodResult, reps: number): void {
  console.log(`   figures: median (min-max) over ${reps} interleaved repetitions; METRICS_CACHE_MS ${r.metricsCacheMs}`);
  const cols = ['', 'p50 ms', 'p99 ms', 'achieved/s', 'daemon CPU us/msg', 'client loop p99 ms'];
  const row = (name: string, rs: ScrapeFloodResult['quiet']): string[] => [
    name,
    spread(rs.map((x) => x.p50Ms), 2),
    spread(rs.map((x) => x.p99Ms), 2),
    spread(rs.map((x) => x.messagesPerSec), 0),
    spread(rs.map((x) => x.cpuUsPerMessage)),
    spread(rs.map((x) => x.clientLoopDelayP99Ms), 2),
  ];
  const rows = [cols, row('unscraped', r.quiet), row(`${r.scrapesPerSec} scrapes/s`, r.flooded)];
  const widths = cols.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  for (const x of rows) console.log('  ' + x.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  const s = r.scrapes;
  console.log(
    `  scrapes answered ${spread(s.map((x) => x.answeredPerSec), 0)}/s (p50 ${spread(s.map((x) => x.p50Ms), 2)} ms, p99 ${spread(s.map((x) => x.p99Ms), 2)} ms, ` +
      `${spread(s.map((x) => x.bytes / Math.max(1, x.answered) / 1024), 1)} KiB each); ${s.reduce((a, x) => a + x.skipped, 0)} skipped (32 outstanding), ${s.reduce((a, x) => a + x.failed, 0)} failed`,
  );
  console.log(`  the issue's figure before the render cache: p50 3 ms unscraped, 1.6-1.9 s at 500 scrapes/s`);
}

function printDmarc(r: DmarcBenchResult, reps: number): void {
  console.log(`   figures: median (min-max) over ${reps} interleaved repetitions; From: ${r.from}`);
  const cols = ['', 'CPU us/msg', 'user us/msg', 'messages/s', 'p50 ms', 'p99 ms'];
  const row = (name: string, rs: DmarcBenchResult['on']): string[] => [
    name,
    spread(rs.map((x) => x.cpuUsPerMessage)),
    spread(rs.map((x) => x.userUsPerMessage)),
    spread(rs.map((x) => x.messagesPerSec), 0),
    spread(rs.map((x) => x.p50Ms), 2),
    spread(rs.map((x) => x.p99Ms), 2),
  ];
  const rows = [cols, row('DMARC off', r.off), row('DMARC on', r.on), ['ratio', spread(r.cpuRatio, 2) + 'x', '', '', '', '']];
  const widths = cols.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  for (const x of rows) console.log('  ' + x.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  const ratio = median(r.cpuRatio);
  console.log(`  target (issue 16): CPU per message DMARC on <= ${TARGETS.dmarcCpuRatio}x off: ${fmt(ratio, 2)}x ${verdict(ratio <= TARGETS.dmarcCpuRatio)}`);
}

function printRewrite(r: RewriteBenchResult, reps: number): void {
  console.log(`   figures: median (min-max) over ${reps} interleaved repetitions; SRS_DOMAIN ${r.srsDomain}`);
  console.log(`   negotiated actions: reject mode ${r.actions.reject} (ADDHDRS), rewrite mode ${r.actions.rewrite} (ADDHDRS, CHGFROM): the MTA negotiates CHGFROM only in rewrite mode`);
  console.log('   per violation reject mode answers end of message with one packet (550), rewrite mode with three (CHGFROM, ADDHEADER, CONTINUE)');
  const cols = ['', 'CPU us/msg', 'user us/msg', 'messages/s', 'p50 ms', 'p99 ms'];
  const row = (label: string, rs: PhaseResultList): string[] => [
    label,
    spread(rs.map((x) => x.cpuUsPerMessage)),
    spread(rs.map((x) => x.userUsPerMessage)),
    spread(rs.map((x) => x.messagesPerSec), 0),
    spread(rs.map((x) => x.p50Ms), 2),
    spread(rs.map((x) => x.p99Ms), 2),
  ];
  const table = (title: string, level: RewriteLevel): void => {
    console.log(`\n${title}`);
    const rows = [cols, row('reject', level.reject), row('rewrite', level.rewrite), ['ratio', spread(level.cpuRatio, 2) + 'x', '', '', '', '']];
    const widths = cols.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
    for (const x of rows) console.log('  ' + x.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  };
  table('every message a violation (foreign -all senders without the ESP include)', r.violations);
  if (r.mixed) table('mixed: 1 violation in 10 messages', r.mixed);
  const ratio = median(r.violations.cpuRatio);
  console.log(`  target (issue 15): CPU per message rewrite <= ${TARGETS.rewriteCpuRatio}x reject, every message a violation: ${fmt(ratio, 2)}x ${verdict(ratio <= TARGETS.rewriteCpuRatio)}`);
  if (r.mixed) console.log(`  mixed traffic (no target): ${fmt(median(r.mixed.cpuRatio), 2)}x`);
}
type PhaseResultList = RewriteLevel['reject'];

function argValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(argv: string[]): Promise<void> {
  const jsonPath = argValue(argv, '--json');
  const quick = argv.includes('--quick');
  const reps = Number(argValue(argv, '--reps') ?? (quick ? 1 : 5));
  if (!Number.isInteger(reps) || reps < 1 || reps > 20) throw new Error('--reps must be an integer from 1 to 20');
  const parts = new Set((argValue(argv, '--part') ?? PARTS.join(',')).split(',').filter(Boolean));
  for (const p of parts) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`--part: ${p} is not one of ${PARTS.join(', ')}`);
  const run = (part: Part): boolean => parts.has(part);
  const before = machine();
  console.log(`sos-milter benchmarks on ${before.cpus} x ${before.cpuModel}, Node ${before.node}, load average ${before.loadavg.join(' ')}`);
  console.log('(on a shared or busy machine the figures are indicative only; compare the ratios, which are paired)');

  let sideBySide: SideBySideResult | undefined;
  if (run('side-by-side')) {
    console.log(`\n== sos-milter (reject mode, regex check, LDAP on, warm caches; Knot + slapd) vs a bare Node responder ==`);
    sideBySide = await runSideBySide(
      quick ? { repetitions: reps, closedMessages: 2000, pacedSeconds: 2, rssAfterMessages: 0, idleSessions: 20 } : { repetitions: reps },
    );
    printSideBySide(sideBySide, reps);
  }

  let scrape: ScrapeFloodResult | undefined;
  if (run('scrape')) {
    console.log(`\n== sos-milter paced at ${PACED_RATE} messages/s, unscraped vs /metrics scraped in a flood from loopback ==  load average ${machine().loadavg.join(' ')}`);
    scrape = await runScrapeFlood({ repetitions: reps, ...(quick ? { pacedSeconds: 2 } : {}) });
    printScrapeFlood(scrape, reps);
  }

  let spf: Awaited<ReturnType<typeof runSpfBench>> | undefined;
  if (run('spf')) {
    console.log(`\n== SPF evaluator (in-process fake DNS; cold = empty caches, warm = cached answers) ==  load average ${machine().loadavg.join(' ')}`);
    console.log(`   target: warm evaluation <= ${TARGETS.spfWarmUs} us`);
    spf = await runSpfBench({ durationMs: quick ? 300 : 2000 });
    console.table({ cold: spf.cold, warm: spf.warm });
    console.log(`   result ${spf.result}, ${spf.dnsTerms} DNS terms, ${spf.lookupsPerEvaluation} lookups per evaluation`);
  }

  let audit: Awaited<ReturnType<typeof runAuditBench>> | undefined;
  if (run('audit')) {
    const auditDomains = quick ? 500 : 5000;
    console.log(`\n== sos-milter audit of ${auditDomains} own domains (slapd + Knot; fresh caches per run) ==  load average ${machine().loadavg.join(' ')}`);
    console.log(`   target: ${AUDIT_TARGET}`);
    audit = await runAuditBench({ domains: auditDomains, ...(quick ? { concurrency: [16] } : {}) });
    console.table(audit);
  }

  let dmarc: DmarcBenchResult | undefined;
  if (run('dmarc')) {
    console.log(`\n== sos-milter with DMARC_CHECK=on vs off (reject mode, regex check, LDAP on, warm caches; Knot + slapd) ==  load average ${machine().loadavg.join(' ')}`);
    dmarc = await runDmarcBench({ repetitions: reps, ...(quick ? { closedMessages: 2000 } : {}) });
    printDmarc(dmarc, reps);
  }

  let rewrite: RewriteBenchResult | undefined;
  if (run('rewrite')) {
    console.log(`\n== sos-milter with MILTER_MODE=rewrite (SRS) vs reject (regex check, LDAP on, warm caches; Knot + slapd) ==  load average ${machine().loadavg.join(' ')}`);
    rewrite = await runRewriteBench({ repetitions: reps, ...(quick ? { closedMessages: 2000 } : {}) });
    printRewrite(rewrite, reps);
  }

  const all = { machineBefore: before, machineAfter: machine(), targets: TARGETS, sideBySide, scrape, spf, audit, dmarc, rewrite };
  console.log('\n' + JSON.stringify(all, null, 2));
  if (jsonPath) writeFileSync(jsonPath, JSON.stringify(all, null, 2) + '\n');
}

const limit = setTimeout(() => {
  console.error(`bench: still running after ${HARD_LIMIT_MS / 60_000} minutes; stopping`);
  killChildren();
  process.exit(1);
}, HARD_LIMIT_MS);
limit.unref();

main(process.argv.slice(2)).then(
  () => clearTimeout(limit),
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
