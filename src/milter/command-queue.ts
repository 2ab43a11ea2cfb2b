/**
 * Runs a session's commands one at a time in arrival order. A command whose step is pending
 * (an asynchronous callback) makes the later ones wait here, bounded in count and bytes: an MTA
 * pipelines only what it negotiated as no-reply, so a peer past the bounds is broken or hostile.
 */
import type { Step } from './invoke.js';

export interface QueueBounds {
  maxItems: number;
  maxBytes: number;
}

export class CommandQueue<T> {
  private readonly waiting: { item: T; size: number }[] = [];
  private waitingBytes = 0;
  /** A step is pending: what is submitted now waits. */
  private running = false;

  /**
   * @param run   runs one item; what it throws, or its step rejects with, goes to `onError`
   *              and the next item runs all the same.
   */
  constructor(
    private readonly run: (item: T) => Step,
    private readonly onError: (err: unknown) => void,
    readonly bounds: QueueBounds,
  ) {}

  /** Items waiting (not the one running). */
  get length(): number {
    return this.waiting.length;
  }

  /** Payload bytes waiting. */
  get bytes(): number {
    return this.waitingBytes;
  }

  /** A step is pending or items wait. */
  get busy(): boolean {
    return this.running || this.waiting.length > 0;
  }

  /** Runs `item` now when nothing is pending, else queues it; false (nothing queued) past the bounds. */
  submit(item: T, size: number): boolean {
    if (!this.busy) {
      this.start(item);
      return true;
    }
    if (this.waiting.length >= this.bounds.maxItems || this.waitingBytes + size > this.bounds.maxBytes) return false;
    this.waitingBytes += size;
    this.waiting.push({ item, size });
    return true;
  }

  /** Like submit, whatever the bounds: for the item that ends the session. */
  submitLast(item: T): void {
    if (!this.busy) this.start(item);
    else this.waiting.push({ item, size: 0 });
  }

  /** Drops what waits; the step running goes on. */
  clear(): void {
    this.waiting.length = 0;
    this.waitingBytes = 0;
  }

  private start(item: T): void {
    let step: Step;
    try {
      step = this.run(item);
    } catch (err) {
      this.onError(err);
      return;
    }
    if (!step) return;
    this.running = true;
    step.then(
      () => this.drain(),
      (err: unknown) => {
        this.onError(err);
        this.drain();
      },
    );
  }

  /** Runs what waits in a loop, not by recursion: a burst of queued packets costs no stack depth. */
  private drain(): void {
    this.running = false;
    while (!this.running && this.waiting.length > 0) {
      const { item, size } = this.waiting.shift()!;
      this.waitingBytes -= size;
      this.start(item);
    }
  }
}
