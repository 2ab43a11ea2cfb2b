/**
 * Buffered stdout for log lines. Lines are gathered and written with write(2) on fd 1 once
 * FLUSH_BYTES have gathered or FLUSH_INTERVAL_MS after the first of them, so a busy daemon
 * makes one system call per few dozen lines and a quiet one shows each line promptly. What is
 * left is written synchronously by flushSync() (shutdown) and at process exit.
 *
 * Writes are synchronous: on a blocking stdout (a pipe, the journal's socket, a file) a reader
 * that falls behind slows the daemon down rather than filling its memory, as syslog(3) does for
 * Postfix. If stdout is non-blocking (Node switches a pipe to non-blocking once anything touches
 * `process.stdout`), a full pipe answers EAGAIN: the lines wait, up to MAX_PENDING_CHARS, and
 * are retried; past that bound new lines are dropped and counted, and once the backlog is
 * written a line (dropNotice) says how many were lost.
 */
import { writeSync } from 'node:fs';

export interface LineSink {
  /** Takes one rendered line; what it returns is ignored (so `lines.push` will do). */
  write(line: string): unknown;
  /** Called by flushLogger, when present: write out anything buffered, synchronously. */
  flushSync?(): void;
}

const FLUSH_BYTES = 16 * 1024;
const FLUSH_INTERVAL_MS = 100;
const RETRY_MS = 20;
/** Characters of lines waiting for stdout (about as many bytes) before new lines are dropped. */
const MAX_PENDING_CHARS = 1024 * 1024;
/** How long flushSync keeps retrying a stdout that answers EAGAIN before giving up. */
const FLUSH_SYNC_PATIENCE_MS = 2000;

export class FdSink implements LineSink {
  private pending = '';
  /** Bytes already encoded whose write stopped part-way (EAGAIN or a short write). */
  private carry: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private dropped = 0;
  private broken = false;
  /** The line that reports lost lines, in the logger's format; set by the logger. */
  dropNotice: ((dropped: number) => string) | undefined;

  constructor(private readonly fd: number) {}

  write(line: string): void {
    if (this.broken) return;
    // Counted in UTF-16 units, each one to three bytes; log lines are mostly ASCII, one byte each.
    if (this.pending.length + line.length + (this.carry?.length ?? 0) > MAX_PENDING_CHARS) {
      this.dropped++;
      return;
    }
    this.pending += line;
    if (this.pending.length >= FLUSH_BYTES && this.carry === undefined) this.writeOut();
    else this.arm(FLUSH_INTERVAL_MS);
  }

  flushSync(): void {
    const deadline = Date.now() + FLUSH_SYNC_PATIENCE_MS;
    while (!this.writeOut() && !this.broken && Date.now() < deadline) sleepSync(1);
  }

  private arm(ms: number): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.writeOut()) this.arm(RETRY_MS);
    }, ms);
    this.timer.unref();
  }

  /** Writes what it can; true when nothing is left. */
  private writeOut(): boolean {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (!this.broken) {
      if (this.carry === undefined) {
        if (this.pending === '' && this.dropped > 0 && this.dropNotice !== undefined) {
          // Everything that waited is out: say what could not wait.
          this.pending = this.dropNotice(this.dropped);
          this.dropped = 0;
        }
        if (this.pending === '') return true;
        this.carry = Buffer.from(this.pending);
        this.pending = '';
      }
      let written: number;
      try {
        written = writeSync(this.fd, this.carry);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          this.arm(RETRY_MS);
          return false;
        }
        // EPIPE, EBADF…: nobody reads stdout any more; nothing written from now on can be saved.
        this.broken = true;
        this.carry = undefined;
        this.pending = '';
        return true;
      }
      this.carry = written >= this.carry.length ? undefined : this.carry.subarray(written);
    }
    return true;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

let stdoutSink: FdSink | undefined;

/** The process's one stdout sink, flushed at exit. */
export function stdout(): FdSink {
  if (stdoutSink === undefined) {
    const sink = new FdSink(1);
    process.once('exit', () => sink.flushSync());
    stdoutSink = sink;
  }
  return stdoutSink;
}
