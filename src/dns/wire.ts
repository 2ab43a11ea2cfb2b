import { createRequire } from 'node:module';
import type * as DnsPacket from 'dns-packet';
import { DnsError, type LookupResult, type MxRecord, type RecordTypeMap, type RRType } from './types.js';
import { sameName } from './names.js';

/** EDNS0 payload size recommended by DNS Flag Day 2020: avoids IP fragmentation. */
export const EDNS_UDP_PAYLOAD = 1232;
export const MAX_CNAME_CHAIN = 8;

/**
 * dns-packet is CommonJS. Imported from an ES module, Node 20 first starts its WebAssembly
 * CommonJS lexer, which stays resident: about 6 MiB of RSS for the daemon's whole life
 * (`npm run bench`, idle daemon). require() needs no lexer. Node 22 and later pay nothing either way.
 */
const packet = createRequire(import.meta.url)('dns-packet') as typeof DnsPacket;

/** dns-packet decodes rcode but its typings omit it. */
export type DecodedResponse = DnsPacket.DecodedPacket & { rcode?: string };

export function encodeQuery(id: number, name: string, type: RRType, edns: boolean): Buffer {
  const query: DnsPacket.Packet = {
    type: 'query',
    id,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
  };
  if (edns) {
    query.additionals = [
      { type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_PAYLOAD, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] },
    ];
  }
  return packet.encode(query);
}

/**
 * Decodes a datagram and checks it answers our question: response bit, id, and the echoed
 * question (name case-insensitively, type, class). Returns undefined for anything else, so
 * that spoofed or stray packets are ignored rather than trusted.
 */
export function decodeMatching(buf: Buffer, id: number, name: string, type: RRType): DecodedResponse | undefined {
  if (buf.length < 12 || buf.readUInt16BE(0) !== id) return undefined;
  let res: DecodedResponse;
  try {
    res = packet.decode(buf) as DecodedResponse;
  } catch {
    return undefined;
  }
  if (!res.flag_qr) return undefined;
  const q = res.questions;
  // FORMERR answers may legitimately omit the question; everything else must echo it.
  if (!q || q.length !== 1) return res.rcode === 'FORMERR' && (!q || q.length === 0) ? res : undefined;
  if (q[0].type !== type || (q[0].class ?? 'IN') !== 'IN' || !sameName(q[0].name, name)) return undefined;
  return res;
}

/** Negative-answer TTL per RFC 2308 §5: the lesser of the SOA's own TTL and its MINIMUM field. */
function negativeTtl(res: DecodedResponse, fallback: number): number {
  for (const rr of res.authorities ?? []) {
    if (rr.type === 'SOA') {
      const ttl = rr.ttl ?? fallback;
      const min = rr.data.minimum ?? ttl;
      return Math.min(ttl, min);
    }
  }
  return fallback;
}

function stripDot(name: string): string {
  return name.length > 1 && name.endsWith('.') ? name.slice(0, -1) : name;
}

function convert<T extends RRType>(rr: DnsPacket.Answer, type: T): RecordTypeMap[T] {
  switch (type) {
    case 'TXT': {
      const data = (rr as DnsPacket.TxtAnswer).data;
      const parts = Array.isArray(data) ? data : [data];
      // latin1: one JS char per octet, so the SPF parser sees the exact bytes.
      return parts.map((p) => (typeof p === 'string' ? p : p.toString('latin1'))) as RecordTypeMap[T];
    }
    case 'MX': {
      const data = (rr as DnsPacket.MxAnswer).data;
      const mx: MxRecord = { priority: data.preference ?? 0, exchange: stripDot(data.exchange) };
      return mx as RecordTypeMap[T];
    }
    case 'PTR':
      return stripDot((rr as DnsPacket.StringAnswer).data) as RecordTypeMap[T];
    default:
      return (rr as DnsPacket.StringAnswer).data as RecordTypeMap[T];
  }
}

/**
 * Turns a NOERROR or NXDOMAIN response into a LookupResult: follows the CNAME chain from
 * the question name inside the answer section (bounded), collects records of the asked
 * type at its end. Other rcodes are thrown as DnsError.
 */
export function toLookupResult<T extends RRType>(
  res: DecodedResponse,
  name: string,
  type: T,
  defaultNegativeTtl: number,
): LookupResult<RecordTypeMap[T]> {
  const rcode = res.rcode ?? 'NOERROR';
  if (rcode === 'NXDOMAIN') return { records: [], nxdomain: true, ttl: negativeTtl(res, defaultNegativeTtl) };
  if (rcode !== 'NOERROR') {
    const code = rcode === 'SERVFAIL' || rcode === 'REFUSED' || rcode === 'FORMERR' ? rcode : 'SERVFAIL';
    throw new DnsError(code, name, type, code === rcode ? undefined : `rcode ${rcode}`);
  }
  const answers = res.answers ?? [];
  let owner = name;
  let ttl = Infinity;
  for (let hops = 0; ; hops++) {
    const records: RecordTypeMap[T][] = [];
    let cname: string | undefined;
    for (const rr of answers) {
      if (!sameName(rr.name, owner)) continue;
      if (rr.type === type) {
        records.push(convert(rr, type));
        ttl = Math.min(ttl, rr.ttl ?? 0);
      } else if (rr.type === 'CNAME' && cname === undefined) {
        cname = (rr as DnsPacket.StringAnswer).data;
        ttl = Math.min(ttl, rr.ttl ?? 0);
      }
    }
    if (records.length > 0) return { records, nxdomain: false, ttl };
    if (cname === undefined) break;
    if (hops >= MAX_CNAME_CHAIN) throw new DnsError('FORMERR', name, type, `CNAME chain longer than ${MAX_CNAME_CHAIN}`);
    owner = stripDot(cname);
  }
  // NODATA (possibly at the end of a CNAME chain whose target the server did not resolve).
  const neg = negativeTtl(res, defaultNegativeTtl);
  return { records: [], nxdomain: false, ttl: Math.min(neg, ttl) };
}
