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
