/**
 * What MILTER_MODE=rewrite costs: the daemon's CPU per message in rewrite mode (SRS) against the
 * same daemon in reject mode, in one run with warm caches (issue 15; target <= 1.10x).
 *
 * Two daemons as the side-by-side bench starts them (regex check, LDAP on, each with its private
 * Knot and slapd serving the e2e data), one with MILTER_MODE=reject, one with MILTER_MODE=rewrite,
 * SRS_DOMAIN and SRS_SECRETS; nothing else differs. The main load has a violation in every
 * message: foreign senders whose restrictive (-all) records do not carry the ESP's include, so
 * reject mode answers end of message with 550 (one REPLYCODE packet) and rewrite mode with
 * CHGFROM <SRS0=...@SRS_DOMAIN>, ADDHEADER and CONTINUE (three packets; the SRS address signed
 * with HMAC-SHA1 per message). Not quite like for like, on purpose: that is what each mode does
 * for Postfix; the rewrite daemon also negotiates CHGFROM (SMFIF_CHGFROM) besides ADDHDRS, the
 * rest of the negotiation is the same, and the client sends both the same packets. A second,
 * mixed load (1 violation in 10 messages, the rest passing) shows the cost on ordinary traffic.
 * Warm-up fills both daemons' caches; then interleaved closed-loop repetitions (alternating which
 * mode comes first), CPU per message paired per repetition.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad, type Mix, type OutcomeCheck, type PhaseResult, type Target } from './load.js';
import { TrafficPlan } from './mta-client.js';
import { removeAtExit, startDaemon, type DaemonChild } from './servers.js';
import { benchHeapFlags, closedOpts, optnegOf } from './side-by-side.js';
import { parseOptnegReply, Resp } from './wire.js';

export const REWRITE_TARGET_RATIO = 1.1;
export const SRS_DOMAIN = 'bounce.esp.example';
/** A test secret of 32 characters, for this bench only. */
const SRS_SECRET = 'benchmark-only-srs-secret-32chr!';
const RCPT = 'someone@rcpt.example';

/** Every message a violation: foreign -all senders that do not carry the ESP's include (e2e zone). */
export const VIOLATION_MIX: Mix = [
  { kind: 'foreign', msg: { sender: 'news@foreign.e2e.test', recipient: RCPT } },
  { kind: 'foreign', msg: { sender: 'billing@foreign.e2e.test', recipient: RCPT } },
  { kind: 'foreign', msg: { sender: 'team@redirected.e2e.test', recipient: RCPT } },
  { kind: 'foreign', msg: { sender: 'alerts@foreign.e2e.test', recipient: RCPT } },
];

/** Ordinary traffic: 1 violation in 10 messages. */
export const MIXED_MIX: Mix = [
  { kind: 'pass', msg: { sender: 'news@pass.e2e.test', recipient: RCPT } },
  { kind: 'pass', msg: { sender: 'billing@pass.e2e.test', recipient: RCPT } },
  { kind: 'pass', msg: { sender: 'alerts@soft.e2e.test', recipient: RCPT } },
  { kind: 'pass', msg: { sender: 'news@pass.e2e.test', recipient: RCPT } },
  { kind: 'foreign', msg: { sender: 'news@foreign.e2e.test', recipient: RCPT } },
  { kind: 'pass', msg: { sender: 'billing@pass.e2e.test', recipient: RCPT } },
  { kind: 'pass', msg: { sender: 'news@pass.e2e.test', recipient: RCPT } },
  { kind: 'pass', msg: { sender: 'alerts@soft.e2e.test', recipient: RCPT } },
  { kind: 'pass', msg: { sender: 'news@pass.e2e.test', recipient: RCPT } },
  { kind: 'pass', msg: { sender: 'billing@pass.e2e.test', recipient: RCPT } },
];

const name = (c: number): string => (c < 0 ? 'closed' : String.fromCharCode(c));

/** Reject mode: a violation ends with 550 alone; a passing message with CONTINUE alone. */
export const REJECT_CHECK: OutcomeCheck = (kind, o) => {
  const violation = kind === 'own' || kind === 'foreign';
  const want = violation ? Resp.REPLYCODE : Resp.CONTINUE;
  if (o.final === want && o.headersAdded === 0 && o.sendersChanged === 0) return undefined;
  return `reply ${name(o.final)} with ${o.headersAdded} header(s), ${o.sendersChanged} CHGFROM; expected ${name(want)} alone`;
};

/** Rewrite mode: a violation ends with CHGFROM, ADDHEADER, CONTINUE; a passing message with CONTINUE alone. */
export const REWRITE_CHECK: OutcomeCheck = (kind, o) => {
  const violation = kind === 'own' || kind === 'foreign';
  const n = violation ? 1 : 0;
  if (o.final === Resp.CONTINUE && o.headersAdded === n && o.sendersChanged === n) return undefined;
  return `reply ${name(o.final)} with ${o.headersAdded} header(s), ${o.sendersChanged} CHGFROM; expected ${violation ? 'CHGFROM, ADDHEADER, ' : ''}CONTINUE`;
};

export interface RewriteBenchOptions {
  repetitions?: number;
  /** Messages per closed-loop repetition (default 20,000). */
  closedMessages?: number;
  /** Also the mixed load (default true). */
  mixed?: boolean;
  progress?: (line: string) => void;
}

export interface RewriteLevel {
  reject: PhaseResult[];
  rewrite: PhaseResult[];
  /** Rewrite / reject CPU per message, per repetition (paired: run back to back). */
  cpuRatio: number[];
}

export interface RewriteBenchResult {
  srsDomain: string;
  /** OPTNEG actions each daemon negotiated (hex). */
  actions: { reject: string; rewrite: string };
  /** Every message a violation. */
  violations: RewriteLevel;
  /** 1 violation in 10 messages; undefined when not run. */
  mixed?: RewriteLevel;
}

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;
type Mode = 'reject' | 'rewrite';

export async function runRewriteBench(opts: RewriteBenchOptions = {}): Promise<RewriteBenchResult> {
  const reps = opts.repetitions ?? 5;
  const closedMessages = opts.closedMessages ?? 20_000;
  const withMixed = opts.mixed ?? true;
  const progress = opts.progress ?? ((line: string) => process.stderr.write(line + '\n'));
  const dirs = { reject: mkdtempSync(join(tmpdir(), 'sos-bench-reject-')), rewrite: mkdtempSync(join(tmpdir(), 'sos-bench-rewrite-')) };
  removeAtExit(dirs.reject);
  removeAtExit(dirs.rewrite);
  const daemons: Partial<Record<Mode, DaemonChild>> = {};
  try {
    const flags = benchHeapFlags();
    daemons.reject = await startDaemon(dirs.reject, flags, { MILTER_MODE: 'reject' });
    daemons.rewrite = await startDaemon(dirs.rewrite, flags, { MILTER_MODE: 'rewrite', SRS_DOMAIN, SRS_SECRETS: SRS_SECRET });
    const plans: Record<Mode, TrafficPlan> = {
      reject: new TrafficPlan(await optnegOf(daemons.reject.port)),
      rewrite: new TrafficPlan(await optnegOf(daemons.rewrite.port)),
    };
    const actions = { reject: '0x' + parseOptnegReply(plans.reject.replyPayload).actions.toString(16), rewrite: '0x' + parseOptnegReply(plans.rewrite.replyPayload).actions.toString(16) };
    const target = (mode: Mode, mix: Mix): Target => ({ server: daemons[mode]!, plan: plans[mode], check: mode === 'reject' ? REJECT_CHECK : REWRITE_CHECK, mix, messagesSoFar: 0 });
    const loads: { key: 'violations' | 'mixed'; targets: Record<Mode, Target> }[] = [{ key: 'violations', targets: { reject: target('reject', VIOLATION_MIX), rewrite: target('rewrite', VIOLATION_MIX) } }];
    if (withMixed) loads.push({ key: 'mixed', targets: { reject: target('reject', MIXED_MIX), rewrite: target('rewrite', MIXED_MIX) } });
    // Warm-up: every sender's answers cached, the JIT settled on both paths.
    for (const load of loads) for (const mode of ['reject', 'rewrite'] as const) await runLoad(load.targets[mode], closedOpts(5000));
    const result: RewriteBenchResult = { srsDomain: SRS_DOMAIN, actions, violations: { reject: [], rewrite: [], cpuRatio: [] } };
    if (withMixed) result.mixed = { reject: [], rewrite: [], cpuRatio: [] };
    for (let rep = 0; rep < reps; rep++) {
      for (const load of loads) {
        const level = result[load.key]!;
        for (const mode of rep % 2 === 0 ? (['reject', 'rewrite'] as const) : (['rewrite', 'reject'] as const)) {
          const r = await runLoad(load.targets[mode], closedOpts(closedMessages));
          level[mode].push(r);
          progress(`rep ${rep + 1}/${reps} closed ${load.key.padEnd(10)} ${mode.padEnd(7)}: ${r.cpuUsPerMessage} us/msg, ${r.messagesPerSec} msg/s, p99 ${r.p99Ms} ms`);
        }
        level.cpuRatio.push(round(level.rewrite[rep]!.cpuUsPerMessage / level.reject[rep]!.cpuUsPerMessage));
      }
    }
    return result;
  } finally {
    await daemons.rewrite?.stop();
    await daemons.reject?.stop();
    if (!process.env.SOS_BENCH_KEEP_DIR) for (const d of Object.values(dirs)) rmSync(d, { recursive: true, force: true });
  }
}
