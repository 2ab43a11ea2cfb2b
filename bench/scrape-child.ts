#!/usr/bin/env node
/**
 * The /metrics flood of the scrape bench (bench/scrape-flood.ts), in its own process so that
 * its work is billed neither to the daemon nor to the load client whose latencies are measured.
 * Sends GET /metrics at RATE per second over keep-alive connections (at most 16 open, at most 32
 * requests outstanding: a server that falls behind is not buried, the shortfall is counted).
 *
 * Usage: node scrape-child.js PORT RATE
 * Stops when stdin closes, then prints one JSON line: requests sent, answered, failed, skipped
 * (rate not reached because 32 were outstanding), bytes, and the answers' p50/p99 ms.
 */
import { Agent, get } from 'node:http';

const port = Number(process.argv[2]);
const rate = Number(process.argv[3]);
if (!Number.isInteger(port) || port <= 0 || !(rate > 0)) {
  console.error('usage: scrape-child.js PORT RATE');
  process.exit(2);
}

const MAX_OUTSTANDING = 32;
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
const latencies: number[] = [];
const stats = { sent: 0, answered: 0, failed: 0, skipped: 0, bytes: 0 };
let outstanding = 0;
const t0 = performance.now();
let due = 0;

function scrape(): void {
  const start = performance.now();
  stats.sent++;
  outstanding++;
  const req = get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
    let n = 0;
    res.on('data', (d: Buffer) => (n += d.length));
    res.on('end', () => {
      outstanding--;
      if (res.statusCode === 200) {
        stats.answered++;
        stats.bytes += n;
        latencies.push(performance.now() - start);
      } else stats.failed++;
    });
  });
  req.on('error', () => {
    outstanding--;
    stats.failed++;
  });
}

const tick = setInterval(() => {
  const target = Math.floor(((performance.now() - t0) / 1000) * rate);
  for (; due < target; due++) {
    if (outstanding >= MAX_OUTSTANDING) stats.skipped++;
    else scrape();
  }
}, 5);

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

process.stdin.resume();
process.stdin.on('end', () => {
  clearInterval(tick);
  const seconds = (performance.now() - t0) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 100) / 100;
  process.stdout.write(
    JSON.stringify({ ...stats, seconds: round(seconds), answeredPerSec: round(stats.answered / seconds), p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)) }) + '\n',
    () => process.exit(0),
  );
});
