/**
 * Next hops ({rcpt_host} values) for which a violating message may pass anyway, e.g. a
 * relay that re-signs or forwards under its own envelope. Compared trimmed and without
 * regard to case; `[relay.example]:25` and `relay.example` are different next hops,
 * exactly as Postfix treats them.
 */
export class IgnoredNextHops {
  private readonly hops: ReadonlySet<string>;

  constructor(hops: Iterable<string>) {
    this.hops = new Set([...hops].map(normaliseNextHop).filter((h) => h !== ''));
  }

  get size(): number {
    return this.hops.size;
  }

  isIgnored(hop: string): boolean {
    return this.hops.has(normaliseNextHop(hop));
  }
}

function normaliseNextHop(hop: string): string {
  return hop.trim().toLowerCase();
}

/** Next hops kept per message for the log line; past them recipients are only counted. */
export const NEXT_HOPS_KEPT = 32;

/**
 * The next hops of one message's recipients, bounded: whether every one is ignored is decided
 * as each recipient arrives, so a message with a million recipients costs a counter, and the
 * log names the first NEXT_HOPS_KEPT hops (one per recipient, as the MTA gave them).
 */
export class RecipientHops {
  count = 0;
  /** Recipients that came without {rcpt_host}. */
  missing = 0;
  /** Every recipient so far has a known and ignored next hop. */
  allIgnored = true;
  readonly kept: string[] = [];

  add(hop: string | undefined, ignored: IgnoredNextHops): void {
    this.count++;
    if (hop === undefined) this.missing++;
    if (!this.allIgnored) return;
    if (hop === undefined || ignored.size === 0 || !ignored.isIgnored(hop)) this.allIgnored = false;
    else if (this.kept.length < NEXT_HOPS_KEPT) this.kept.push(hop);
  }

  /** True only when there is at least one recipient and every recipient's next hop is ignored. */
  everyIgnored(): boolean {
    return this.count > 0 && this.allIgnored;
  }

  /** For the log line of a message whose hops are all ignored: the hops, and how many more there were. */
  toString(): string {
    const shown = this.kept.join(',');
    const more = this.count - this.kept.length;
    return this.allIgnored && more > 0 ? `${shown},... (${more} more)` : shown;
  }
}
