/**
 * What DMARC_CHECK=on costs: the daemon's CPU per message with the prospective DMARC judgement
 * against the same daemon without it, in one run with warm caches (issue 16; target <= 1.25x).
 *
 * Two daemons as the side-by-side bench starts them (reject mode, regex check, LDAP on, each with
 * its private Knot and slapd serving the e2e data), one with DMARC_CHECK=on and
 * DKIM_SIGNING_DOMAINS=*. The load is the side-by-side mix; the DMARC-on daemon negotiates the
 * header stage and is sent what Postfix would send it, one From: field per message, naming a
 * p=reject domain (dmarc-reject.e2e.test) so that every judged message takes the whole path:
 * the From: field parsed, the policy discovered, SPF alignment (relaxed: both organizational
 * domains walked), DKIM alignment (the ESP signs for the From: domain: it aligns, so the message
 * passes and the mix's expected replies hold). The DMARC-off daemon gets no header, as Postfix
 * sends none to a milter that did not ask. Warm-up fills both daemons' caches; then interleaved
 * closed-loop repetitions (alternating which comes first), CPU per message paired per repetition.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad, type PhaseResult, type Target } from './load.js';
import { TrafficPlan } from './mta-client.js';
import { removeAtExit, startDaemon, type DaemonChild } from './servers.js';
import { benchHeapFlags, closedOpts, optnegOf, SOS_CHECK } from './side-by-side.js';

export const DMARC_TARGET_RATIO = 1.25;
const FROM = 'Alice Example <alice@dmarc-reject.e2e.test>';

export interface DmarcBenchOptions {
  repetitions?: number;
  /** Messages per closed-loop repetition (default 20,000). */
  closedMessages?: number;
  progress?: (line: string) => void;
}

export interface DmarcBenchResult {
  from: string;
  off: PhaseResult[];
  on: PhaseResult[];
  /** DMARC on / off CPU per message, per repetition (paired: run back to back). */
  cpuRatio: number[];
}

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

export async function runDmarcBench(opts: DmarcBenchOptions = {}): Promise<DmarcBenchResult> {
  const reps = opts.repetitions ?? 5;
  const closedMessages = opts.closedMessages ?? 20_000;
  const progress = opts.progress ?? ((line: string) => process.stderr.write(line + '\n'));
  const dirs = { off: mkdtempSync(join(tmpdir(), 'sos-bench-dmarc-off-')), on: mkdtempSync(join(tmpdir(), 'sos-bench-dmarc-on-')) };
  removeAtExit(dirs.off);
  removeAtExit(dirs.on);
  const daemons: Partial<Record<'off' | 'on', DaemonChild>> = {};
  try {
    const flags = benchHeapFlags();
    daemons.off = await startDaemon(dirs.off, flags);
    daemons.on = await startDaemon(dirs.on, flags, { DMARC_CHECK: 'on', DKIM_SIGNING_DOMAINS: '*' });
    const targets: Record<'off' | 'on', Target> = {
      off: { server: daemons.off, plan: new TrafficPlan(await optnegOf(daemons.off.port)), check: SOS_CHECK, messagesSoFar: 0 },
      on: { server: daemons.on, plan: new TrafficPlan(await optnegOf(daemons.on.port), FROM), check: SOS_CHECK, messagesSoFar: 0 },
    };
    for (const key of ['off', 'on'] as const) await runLoad(targets[key], closedOpts(5000));
    const result: DmarcBenchResult = { from: FROM, off: [], on: [], cpuRatio: [] };
    for (let rep = 0; rep < reps; rep++) {
      for (const key of rep % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        const r = await runLoad(targets[key], closedOpts(closedMessages));
        result[key].push(r);
        progress(`rep ${rep + 1}/${reps} closed DMARC ${key.padEnd(3)}: ${r.cpuUsPerMessage} us/msg, ${r.messagesPerSec} msg/s, p99 ${r.p99Ms} ms`);
      }
      result.cpuRatio.push(round(result.on[rep]!.cpuUsPerMessage / result.off[rep]!.cpuUsPerMessage));
    }
    return result;
  } finally {
    await daemons.on?.stop();
    await daemons.off?.stop();
    if (!process.env.SOS_BENCH_KEEP_DIR) for (const d of Object.values(dirs)) rmSync(d, { recursive: true, force: true });
  }
}
