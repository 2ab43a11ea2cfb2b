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

  /**
   * True only when there is at least one recipient and every recipient's next hop is
   * ignored; a recipient whose {rcpt_host} is unknown (undefined) counts as not ignored.
   */
  allIgnored(nextHops: readonly (string | undefined)[]): boolean {
    if (this.hops.size === 0 || nextHops.length === 0) return false;
    return nextHops.every((hop) => hop !== undefined && this.isIgnored(hop));
  }
}

export function normaliseNextHop(hop: string): string {
  return hop.trim().toLowerCase();
}

/** Distinct next hops kept per message for the log line; the rest are only counted. */
export const NEXT_HOPS_KEPT = 16;

/**
 * The next hops of one message's recipients, bounded: whether every one is ignored is decided
 * as each recipient arrives, so a message with a million recipients costs a counter, and the
 * log names at most NEXT_HOPS_KEPT distinct hops.
 */
export class RecipientHops {
  count = 0;
  /** Every recipient so far has a known and ignored next hop. */
  allIgnored = true;
  readonly distinct: string[] = [];
  /** Recipients whose hop is not among `distinct` because the list was full. */
  omitted = 0;

  add(hop: string | undefined, ignored: IgnoredNextHops): void {
    this.count++;
    if (hop === undefined || !ignored.isIgnored(hop)) this.allIgnored = false;
    if (hop === undefined || this.distinct.includes(hop)) return;
    if (this.distinct.length < NEXT_HOPS_KEPT) this.distinct.push(hop);
    else this.omitted++;
  }

  /** True only when there is at least one recipient and every recipient's next hop is ignored. */
  everyIgnored(): boolean {
    return this.count > 0 && this.allIgnored;
  }

  /** For the log: the distinct hops as the MTA gave them, and how many more there were. */
  toString(): string {
    const shown = this.distinct.join(',');
    return this.omitted > 0 ? `${shown},... (${this.omitted} more)` : shown;
  }
}
