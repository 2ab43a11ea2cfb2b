/**
 * The milter's latency while /metrics is scraped in a flood, against the same daemon unscraped,
 * in one run (issue 14: before the render cache, 500 scrapes/s from one loopback client took the
 * per-message p50 from 3 ms to 1.6-1.9 s, every scrape rendering every metric again).
 *
 * One daemon (as the side-by-side bench starts it, plus METRICS_LISTEN; METRICS_CACHE_MS at its
 * default unless SOS_BENCH_DAEMON_ENV says otherwise), warmed up; then interleaved repetitions
 * of the paced level (PACED_RATE messages/s over CONNECTIONS connections) without scraping and
 * with the flood running in its own process (bench/scrape-child.ts), alternating which comes
 * first. Per message p50/p99 as in the side-by-side bench; the daemon's CPU per message includes
 * the scrapes it answered in the flooded phases.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad, type PhaseResult, type Target } from './load.js';
import { TrafficPlan } from './mta-client.js';
import { removeAtExit, startDaemon, type DaemonChild } from './servers.js';
import { benchHeapFlags, closedOpts, optnegOf, pacedOpts, SOS_CHECK } from './side-by-side.js';
import { freePort } from '../test/support/ports.js';

const SCRAPER_JS = fileURLToPath(new URL('./scrape-child.js', import.meta.url));

export interface ScrapeFloodOptions {
  repetitions?: number;
  /** Length of each paced phase, s (default 8). */
  pacedSeconds?: number;
  /** Scrapes per second of the flood (default 500). */
  scrapesPerSec?: number;
  progress?: (line: string) => void;
}

export interface ScrapeStats {
  sent: number;
  answered: number;
  failed: number;
  /** Not sent: 32 scrapes were outstanding (the daemon fell behind the rate). */
  skipped: number;
  bytes: number;
  seconds: number;
  answeredPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface ScrapeFloodResult {
  scrapesPerSec: number;
  /** METRICS_CACHE_MS the daemon ran with ('default' when not set). */
  metricsCacheMs: string;
  quiet: PhaseResult[];
  flooded: PhaseResult[];
  scrapes: ScrapeStats[];
}

/** Starts the flood; stop() ends it and resolves with its figures. */
function startFlood(port: number, rate: number): { stop(): Promise<ScrapeStats> } {
  const child = spawn(process.execPath, [SCRAPER_JS, String(port), String(rate)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      return JSON.parse(out) as ScrapeStats;
    },
  };
}

export async function runScrapeFlood(opts: ScrapeFloodOptions = {}): Promise<ScrapeFloodResult> {
  const reps = opts.repetitions ?? 5;
  const pacedSeconds = opts.pacedSeconds ?? 8;
  const rate = opts.scrapesPerSec ?? 500;
  const progress = opts.progress ?? ((line: string) => process.stderr.write(line + '\n'));
  const dir = mkdtempSync(join(tmpdir(), 'sos-bench-scrape-'));
  removeAtExit(dir);
  let daemon: DaemonChild | undefined;
  try {
    const metricsPort = await freePort();
    daemon = await startDaemon(dir, benchHeapFlags(), { METRICS_LISTEN: `127.0.0.1:${metricsPort}` });
    const target: Target = { server: daemon, plan: new TrafficPlan(await optnegOf(daemon.port)), check: SOS_CHECK, messagesSoFar: 0 };
    await runLoad(target, closedOpts(5000));
    const result: ScrapeFloodResult = {
      scrapesPerSec: rate,
      metricsCacheMs: /(?:^| )METRICS_CACHE_MS=(\S*)/.exec(process.env.SOS_BENCH_DAEMON_ENV ?? '')?.[1] ?? 'default',
      quiet: [],
      flooded: [],
      scrapes: [],
    };
    for (let rep = 0; rep < reps; rep++) {
      for (const flooded of rep % 2 === 0 ? [false, true] : [true, false]) {
        const flood = flooded ? startFlood(metricsPort, rate) : undefined;
        // The flood reaches its rate before the messages start.
        if (flood) await new Promise((r) => setTimeout(r, 500));
        let r: PhaseResult;
        try {
          r = await runLoad(target, pacedOpts(pacedSeconds));
        } finally {
          const s = await flood?.stop();
          if (s) result.scrapes.push(s);
        }
        (flooded ? result.flooded : result.quiet).push(r);
        const s = result.scrapes.at(-1);
        progress(`rep ${rep + 1}/${reps} paced ${flooded ? `with ${rate} scrapes/s` : 'unscraped'}: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms${flooded && s ? `; ${s.answeredPerSec} scrapes/s answered (p99 ${s.p99Ms} ms), ${s.skipped} skipped, ${s.failed} failed` : ''}`);
      }
    }
    return result;
  } finally {
    await daemon?.stop();
    if (!process.env.SOS_BENCH_KEEP_DIR) rmSync(dir, { recursive: true, force: true });
  }
}
