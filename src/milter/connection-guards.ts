/**
 * The four bounds the server keeps on each connection, with their state in one place:
 *
 * - idle timeout: no byte read, no reply written and no callback at work for idleTimeoutMs;
 * - packet deadline: a packet must be complete packetTimeoutMs after its first byte (a peer
 *   that trickles a packet byte by byte is cut; silence between packets is the idle timeout's);
 * - write backpressure: while our replies wait to be read the connection is not read, and a
 *   peer that does not read them within packetTimeoutMs is cut;
 * - input budget: the input a connection holds (incomplete packet, packets queued behind a
 *   callback) counts into one budget shared by all connections (InputBudget).
 *
 * The guards only keep time and tell; the server closes connections and counts. Time comes
 * from an injected clock, so each guard is tested without waiting.
 */
import type { MilterClock } from './clock.js';

/** What the guards read from the connection's session. */
export interface SessionInput {
  /** Bytes of the packet received in part. */
  readonly partialBytes: number;
  /** Input held: the incomplete packet and the packets waiting behind a callback. */
  readonly bufferedBytes: number;
  /** Packets completed so far. */
  readonly packetsIn: number;
  /** A callback is at work or commands wait: the peer waits for us, it is not idle. */
  readonly busyNow: boolean;
}

/** Input held by all connections together, against its limit. */
export class InputBudget {
  held = 0;

  constructor(readonly maxBytes: number) {}

  get exceeded(): boolean {
    return this.held > this.maxBytes;
  }
}

export interface GuardLimits {
  idleTimeoutMs: number;
  packetTimeoutMs: number;
}

/** What the sweep of a watched connection found. */
export type WatchOutcome = 'write-stalled' | 'packet-timeout' | 'settled' | 'watching';

export class ConnectionGuards {
  // Idle timeout.
  /** Bytes read or a reply written since the last sweep: a flag, so that no read pays for a clock. */
  private stirred = false;
  /** The sweep that last saw the connection stirred or busy (the idle time counts from there). */
  private quietSince: number;

  // Packet deadline.
  /** Bytes of the incomplete packet, as of the last count. */
  private partial = 0;
  /** When the incomplete packet began, or packets last completed while one was incomplete. */
  private partialSince = 0;
  private packetsSeen = 0;

  // Write backpressure.
  /** Since when the connection is not read because its replies wait; undefined while read. */
  private pausedSince: number | undefined;

  // Input budget.
  /** Input held, as last counted into the shared budget. */
  private heldBytes = 0;

  constructor(
    private readonly input: SessionInput,
    private readonly budget: InputBudget,
    private readonly limits: GuardLimits,
    private readonly clock: Pick<MilterClock, 'now'>,
  ) {
    this.quietSince = clock.now();
  }

  /** Input held, as last counted. */
  get held(): number {
    return this.heldBytes;
  }

  /** Bytes of the incomplete packet, as last counted. */
  get partialBytes(): number {
    return this.partial;
  }

  get paused(): boolean {
    return this.pausedSince !== undefined;
  }

  /** The sweep must look at this connection's packet and write checks. */
  get watched(): boolean {
    return this.heldBytes !== 0 || this.pausedSince !== undefined;
  }

  /** Bytes read or a reply written. */
  stir(): void {
    this.stirred = true;
  }

  /**
   * Once per sweep at `now`: true when the connection has been quiet for the idle timeout.
   * Activity since the last sweep restarts the count from this sweep, never from before it.
   */
  idleExpired(now: number): boolean {
    if (this.stirred || this.input.busyNow) {
      this.stirred = false;
      this.quietSince = now;
      return false;
    }
    return now - this.quietSince >= this.limits.idleTimeoutMs;
  }

  /** After a read: a packet begun or packets completed restart the packet deadline; the held input is recounted. */
  afterRead(): void {
    if (this.input.partialBytes !== 0 && (this.partial === 0 || this.input.packetsIn !== this.packetsSeen)) {
      this.partialSince = this.clock.now();
      this.packetsSeen = this.input.packetsIn;
    }
    this.recount();
  }

  /** Counts the input held now into the shared budget (queued packets leave between reads). */
  recount(): void {
    // The decoder drops its partial packet when the session ends (an overflow, a protocol
    // error): a stale count here would later cut the connection as a packet timeout.
    this.partial = this.input.partialBytes;
    const held = this.input.bufferedBytes;
    this.budget.held += held - this.heldBytes;
    this.heldBytes = held;
  }

  /** Our replies wait to be read: the server stops reading. False when already paused. */
  pauseReading(): boolean {
    if (this.pausedSince !== undefined) return false;
    this.pausedSince = this.clock.now();
    return true;
  }

  /** The replies drained: the server reads again. False when not paused (or released). */
  resumeReading(): boolean {
    if (this.pausedSince === undefined) return false;
    this.pausedSince = undefined;
    // Time spent waiting for the peer to read is not the peer's packet deadline running.
    if (this.partial > 0) this.partialSince = this.clock.now();
    return true;
  }

  /** How long reading has been paused at `now` (0 when it is not). */
  stalledMs(now: number): number {
    return this.pausedSince === undefined ? 0 : now - this.pausedSince;
  }

  /** The packet and write checks of a watched connection, at `now`. */
  check(now: number): WatchOutcome {
    this.recount();
    if (this.pausedSince !== undefined) return now - this.pausedSince > this.limits.packetTimeoutMs ? 'write-stalled' : 'watching';
    if (this.partial > 0 && now - this.partialSince > this.limits.packetTimeoutMs) return 'packet-timeout';
    return this.heldBytes === 0 ? 'settled' : 'watching';
  }

  /** The connection is gone: its input leaves the budget and no guard fires for it again. */
  release(): void {
    this.budget.held -= this.heldBytes;
    this.heldBytes = 0;
    this.partial = 0;
    this.pausedSince = undefined;
  }
}
