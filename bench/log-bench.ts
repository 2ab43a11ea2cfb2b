#!/usr/bin/env node
/**
 * Per-line CPU cost of the log lines on the message path, through src/log's public API only:
 * the `judged` summary line from a per-message child logger (the one line every judged message
 * writes), text and JSON, rendered to a discarding destination and written to stdout (a child
 * process whose stdout is /dev/null, so buffering and write(2) are counted), plus a disabled
 * debug call. Standalone: `npm run build && node dist/bench/log-bench.js [--lines N] [--runs R]`.
 * CPU time (user + system) per line, median of R runs; the machine is shared, so compare
 * figures from one run only.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLogger, flushLogger, messageLogger, type Logger, type LogDestination } from '../src/log/index.js';

type Format = 'text' | 'json';

const judgedFields = (i: number) => ({
  domain: 'example.com',
  own: 'foreign',
  record: 'v=spf1 ip4:198.51.100.0/24 include:_spf.example.net -all',
  recordDomain: undefined,
  check: 'regex',
  result: 'restrictive',
  outbound: undefined,
  action: 'log',
  reason: 'restrictive record (-all) does not match SPF_REGEX',
  client: '192.0.2.7',
  latencyMs: 0.812 + (i & 7),
});

/** What the daemon does per message at end of message: a child for id/queue id, one line. */
function judgedLoop(logger: Logger, lines: number): void {
  for (let i = 0; i < lines; i++) messageLogger(logger, 'k3v9x0qa', '4XyZ1PqR').info(judgedFields(i), 'judged');
}

function disabledLoop(logger: Logger, lines: number): void {
  for (let i = 0; i < lines; i++) logger.debug({ sender: 'a@example.com', domain: 'example.com' }, 'disabled');
}

/** CPU nanoseconds per line of one run. */
function cpuPerLine(lines: number, body: () => void): number {
  const start = process.cpuUsage();
  body();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / lines;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const discard: LogDestination = { write: () => undefined };

function measureInProcess(format: Format, lines: number, runs: number): { judged: number; disabled: number } {
  const logger = createLogger({ name: 'sos-milter', level: 'info', format, destination: discard });
  judgedLoop(logger, Math.min(lines, 20_000)); // warm-up: let the JIT settle before measuring
  const judged: number[] = [];
  const disabled: number[] = [];
  for (let r = 0; r < runs; r++) {
    judged.push(cpuPerLine(lines, () => judgedLoop(logger, lines)));
    disabled.push(cpuPerLine(lines, () => disabledLoop(logger, lines)));
  }
  return { judged: median(judged), disabled: median(disabled) };
}

/** In a child whose stdout is /dev/null: the real stdout path, buffering and write(2) included. */
function stdoutChild(format: Format, lines: number, runs: number): void {
  const logger = createLogger({ name: 'sos-milter', level: 'info', format });
  judgedLoop(logger, Math.min(lines, 20_000));
  flushLogger(logger);
  const figures: number[] = [];
  for (let r = 0; r < runs; r++) {
    figures.push(
      cpuPerLine(lines, () => {
        judgedLoop(logger, lines);
        flushLogger(logger);
      }),
    );
  }
  process.stderr.write(`${JSON.stringify({ stdout: median(figures) })}\n`);
}

function measureStdout(format: Format, lines: number, runs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', format, '--lines', String(lines), '--runs', String(runs)], {
      stdio: ['ignore', openSync('/dev/null', 'w'), 'pipe'],
    });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = err.trim().split('\n').pop() ?? '';
      try {
        resolve((JSON.parse(last) as { stdout: number }).stdout);
      } catch {
        reject(new Error(`stdout bench child exited ${code}: ${err}`));
      }
    });
  });
}

function option(argv: string[], name: string, fallback: number): number {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
}

async function main(argv: string[]): Promise<void> {
  const lines = option(argv, '--lines', 200_000);
  const runs = option(argv, '--runs', 5);
  const childAt = argv.indexOf('--child');
  if (childAt >= 0) {
    stdoutChild(argv[childAt + 1] as Format, lines, runs);
    return;
  }
  const rows: Record<string, string>[] = [];
  for (const format of ['text', 'json'] as const) {
    const inProcess = measureInProcess(format, lines, runs);
    const stdout = await measureStdout(format, lines, runs);
    rows.push({
      format,
      'judged line, rendered (ns)': inProcess.judged.toFixed(0),
      'judged line, to stdout (ns)': stdout.toFixed(0),
      'disabled debug call (ns)': inProcess.disabled.toFixed(1),
    });
  }
  console.log(`log bench: CPU per line, median of ${runs} runs of ${lines} lines, Node ${process.version} (shared machine: noisy)`);
  console.table(rows);
}

await main(process.argv.slice(2));
