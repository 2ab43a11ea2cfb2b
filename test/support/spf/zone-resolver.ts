import { DnsError, type LookupResult, type MxRecord, type RecordTypeMap, type Resolver, type RRType } from '../../../src/dns/types.js';
import { isQueryableName } from '../../../src/spf/domain.js';
import { formatIpv6, parseIpv6 } from '../../../src/spf/ip.js';

/**
 * An in-process fake DNS serving the `zonedata` of the RFC 7208 conformance suite format, by
 * the rules of its README ("Serving zonedata as a fake DNS"):
 *  - names are case-insensitive, one trailing dot ignored; unknown name = NXDOMAIN, known name
 *    without records of the type = NODATA;
 *  - a name with no TXT entry serves its SPF entries as TXT; any TXT entry (even `TXT: NONE`)
 *    stops that copy, and NONE itself serves nothing;
 *  - `TXT: [a, b]` is one record of several strings; two TXT lines are two records;
 *  - a bare `TIMEOUT` makes every type without a record listed before it time out (the
 *    SPF->TXT copies protect nothing); extension `RCODE: n` works the same way with n = 2
 *    SERVFAIL, 5 REFUSED, 1 FORMERR, 3 NXDOMAIN, 4 (NOTIMP) SERVFAIL;
 *  - CNAME is followed for every type; a loop answers SERVFAIL;
 *  - names no resolver can send (empty label, label > 63, name > 253) throw BADNAME.
 * It records every query, so tests can bound the DNS work of an evaluation.
 */

export type ZoneData = Record<string, unknown>;

export interface ZoneQuery {
  name: string;
  type: RRType;
}

type Entry =
  | { kind: 'record'; type: string; value: unknown }
  | { kind: 'txt-none' }
  | { kind: 'failure'; rcode: number };

const TTL = 3600;
const MAX_CNAME_CHAIN = 16;

export class ZoneResolver implements Resolver {
  /** Every question asked, in order. */
  readonly queries: ZoneQuery[] = [];
  private readonly names = new Map<string, Entry[]>();

  constructor(zonedata?: ZoneData | null) {
    for (const [key, list] of Object.entries(zonedata ?? {})) {
      const name = normalise(key);
      const entries = this.names.get(name) ?? [];
      for (const item of Array.isArray(list) ? list : [list]) entries.push(...toEntries(item));
      this.names.set(name, entries);
    }
  }

  get queryCount(): number {
    return this.queries.length;
  }

  async lookup<T extends RRType>(name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>> {
    this.queries.push({ name, type });
    const norm = normalise(name);
    if (!isQueryableName(norm)) throw new DnsError('BADNAME', name, type);
    return this.resolve(norm, type, name, new Set()) as LookupResult<RecordTypeMap[T]>;
  }

  private resolve(name: string, type: RRType, asked: string, seen: Set<string>): LookupResult<unknown> {
    const entries = this.names.get(name);
    if (!entries) return { records: [], nxdomain: true, ttl: TTL };
    // Walk in order: a record of this type (or a CNAME) listed first protects it from a failure.
    for (const e of entries) {
      if (e.kind === 'record' && (e.type === type || e.type === 'CNAME')) break;
      if (e.kind === 'failure') {
        if (e.rcode === 3) return { records: [], nxdomain: true, ttl: TTL };
        throw new DnsError(rcodeError(e.rcode), asked, type);
      }
    }
    const cname = entries.find((e) => e.kind === 'record' && e.type === 'CNAME');
    if (cname && cname.kind === 'record') {
      if (seen.has(name) || seen.size >= MAX_CNAME_CHAIN) throw new DnsError('SERVFAIL', asked, type, 'CNAME loop');
      seen.add(name);
      return this.resolve(normalise(String(cname.value)), type, asked, seen);
    }
    const records: unknown[] = [];
    if (type === 'TXT') {
      const explicit = entries.some((e) => e.kind === 'txt-none' || (e.kind === 'record' && e.type === 'TXT'));
      const source = explicit ? 'TXT' : 'SPF';
      for (const e of entries) if (e.kind === 'record' && e.type === source) records.push(txtValue(e.value));
    } else {
      for (const e of entries) if (e.kind === 'record' && e.type === type) records.push(convert(type, e.value));
    }
    return { records, nxdomain: false, ttl: TTL };
  }
}

function normalise(name: string): string {
  const lower = String(name).toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

function rcodeError(rcode: number): 'SERVFAIL' | 'REFUSED' | 'FORMERR' | 'TIMEOUT' {
  if (rcode === -1) return 'TIMEOUT';
  if (rcode === 5) return 'REFUSED';
  if (rcode === 1) return 'FORMERR';
  return 'SERVFAIL';
}

function toEntries(item: unknown): Entry[] {
  if (typeof item === 'string') {
    return item.trim().toUpperCase() === 'TIMEOUT' ? [{ kind: 'failure', rcode: -1 }] : [];
  }
  if (item === null || typeof item !== 'object') return [];
  const out: Entry[] = [];
  for (const [rawType, value] of Object.entries(item as Record<string, unknown>)) {
    const type = rawType.toUpperCase();
    if (type === 'TIMEOUT') out.push({ kind: 'failure', rcode: -1 });
    else if (type === 'RCODE') {
      const rcode = Number(value);
      if (rcode !== 0) out.push({ kind: 'failure', rcode: Number.isFinite(rcode) ? rcode : 2 });
    } else if (type === 'TXT' && value === 'NONE') out.push({ kind: 'txt-none' });
    else out.push({ kind: 'record', type, value });
  }
  return out;
}

function txtValue(value: unknown): string[] {
  if (Array.isArray(value)) return value.map((s) => String(s ?? ''));
  if (value === null || value === undefined) return [''];
  return [String(value)];
}

function convert(type: RRType, value: unknown): unknown {
  switch (type) {
    case 'AAAA': {
      const text = String(value);
      const bytes = parseIpv6(text);
      return bytes ? formatIpv6(bytes) : text;
    }
    case 'MX':
      return mxValue(value);
    case 'PTR':
      return stripDot(String(value ?? ''));
    default:
      return String(value);
  }
}

function mxValue(value: unknown): MxRecord {
  if (Array.isArray(value)) return { priority: Number(value[0]) || 0, exchange: stripDot(String(value[1] ?? '')) };
  if (value && typeof value === 'object') {
    const v = value as { priority?: unknown; exchange?: unknown };
    return { priority: Number(v.priority) || 0, exchange: stripDot(String(v.exchange ?? '')) };
  }
  const parts = String(value).trim().split(/\s+/);
  if (parts.length >= 2) return { priority: Number(parts[0]) || 0, exchange: stripDot(parts[1]) };
  return { priority: 0, exchange: stripDot(parts[0] ?? '') };
}

function stripDot(s: string): string {
  return s.endsWith('.') ? s.slice(0, -1) : s;
}
