/**
 * How much of a TXT answer is worth keeping. This resolver exists for SPF, and SPF reads TXT
 * answers in exactly two ways:
 *
 *  - record selection (RFC 7208 §4.5): only records that start with "v=spf1" (followed by a
 *    space or the end) count; every other record is discarded; more than one SPF record is a
 *    permerror, so with two or more only their number matters;
 *  - the exp= explanation (RFC 7208 §6.2): the answer must hold exactly one record, whose text
 *    becomes the explanation; with no record or several, the explanation is the default one.
 *
 * Neither reading needs anything else, so a bounded answer keeps only what one of them can use
 * and counts the rest (`omitted`), which is all the counting rules need:
 *
 *  - an SPF record is kept up to MAX_SPF_RECORD_OCTETS. RFC 7208 §3.4 asks publishers to stay
 *    within a 512-octet UDP answer (about 450 octets of record text) and lets verifiers
 *    ignore records too long for one UDP packet. Only the DNS-querying terms are limited
 *    (§4.6.4: ten), ip4/ip6 terms are not, so a long record can still be usable: this verifier
 *    follows TCP (RFC 7766) and reads up to 16 KiB, about a thousand ip4 terms and 36 times the
 *    guideline, and judges a longer record a permerror with a reason that says so;
 *  - the only record of an answer is kept, when it is not an SPF record, up to
 *    MAX_EXPLANATION_OCTETS: the explanation is meant for an SMTP reply (RFC 7208 §6.2), and a
 *    reply line holds at most 512 octets including its code (RFC 5321 §4.5.3.1.5); a longer
 *    one is treated like any unusable exp= (default explanation);
 *  - anything else (non-SPF records beside others, SPF records beside other SPF records) is
 *    only counted.
 *
 * The resolver serves DMARC policy discovery too (src/dmarc), which reads TXT answers at
 * `_dmarc.` names in one way (RFC 7489 §6.6.3, DMARCbis): records that start with "v=DMARC1"
 * count, all others are discarded, and several of them are as good as none. So, besides the
 * above, a DMARC record is kept when it is its answer's only one, up to
 * MAX_DMARC_RECORD_OCTETS (the DMARC parser's own bound); otherwise DMARC records are only
 * counted (`omitted.dmarc`). Before this, a `_dmarc` answer holding a DMARC record beside an
 * unrelated TXT record lost both.
 *
 * So a 50 KB TXT answer under a wildcard costs a few hundred octets of cache, not 50 KB.
 */
import type { LookupResult, OmittedTxt, TxtRecord } from './types.js';

export const MAX_SPF_RECORD_OCTETS = 16_384;
export const MAX_EXPLANATION_OCTETS = 512;
/** DMARC record text kept of one answer; the DMARC parser reads no more (src/dmarc/record.ts). */
export const MAX_DMARC_RECORD_OCTETS = 2048;

/** RFC 7208 §4.5: "v=spf1" in any case, then a space or the end of the record. */
export function startsSpfRecord(strings: TxtRecord): boolean {
  let first = strings.length === 1 ? strings[0] : '';
  for (let i = 0; strings.length > 1 && i < strings.length && first.length < 7; i++) first += strings[i].slice(0, 7 - first.length);
  return first.length >= 6 && first.slice(0, 6).toLowerCase() === 'v=spf1' && (first.length === 6 || first.charCodeAt(6) === 0x20);
}

/**
 * Loosely, whether a record starts like a DMARC record ("v", "=", "DMARC1", spaces allowed,
 * any case): the DMARC parser is stricter, this only decides what the cache keeps.
 */
export function startsDmarcRecord(strings: TxtRecord): boolean {
  let head = '';
  for (let i = 0; i < strings.length && head.length < 16; i++) head += strings[i].slice(0, 16 - head.length);
  return /^[ \t]*v[ \t]*=[ \t]*dmarc1(?:$|[; \t])/i.test(head);
}

/** Octets of a record's text (strings hold one char per octet). */
export function recordOctets(strings: TxtRecord): number {
  let n = 0;
  for (const s of strings) n += s.length;
  return n;
}

/**
 * The part of a TXT answer SPF can use, with the rest counted in `omitted`. Returns the answer
 * itself when nothing needs to go (the usual case: no copy).
 */
export function boundTxtAnswer(answer: LookupResult<TxtRecord>): LookupResult<TxtRecord> {
  const records = answer.records;
  if (records.length === 0) return answer;
  if (records.length === 1) {
    const only = records[0];
    const isSpf = startsSpfRecord(only);
    const isDmarc = !isSpf && startsDmarcRecord(only);
    if (recordOctets(only) <= (isSpf ? MAX_SPF_RECORD_OCTETS : isDmarc ? MAX_DMARC_RECORD_OCTETS : MAX_EXPLANATION_OCTETS)) return answer;
    return withOmitted(answer, [], isSpf ? { spf: 1, other: 0 } : isDmarc ? { spf: 0, other: 0, dmarc: 1 } : { spf: 0, other: 1 });
  }
  let spf = 0;
  let dmarc = 0;
  let keep: TxtRecord | undefined;
  let keepDmarc: TxtRecord | undefined;
  for (const r of records) {
    if (startsSpfRecord(r)) {
      spf++;
      keep = r;
    } else if (startsDmarcRecord(r)) {
      dmarc++;
      keepDmarc = r;
    }
  }
  const omitted: OmittedTxt = { spf, other: records.length - spf - dmarc };
  if (dmarc > 0) omitted.dmarc = dmarc;
  const kept: TxtRecord[] = [];
  // Exactly one SPF record within the bound is worth keeping, and so is exactly one DMARC record.
  if (spf === 1 && recordOctets(keep as TxtRecord) <= MAX_SPF_RECORD_OCTETS) {
    omitted.spf = 0;
    kept.push(keep as TxtRecord);
  }
  if (dmarc === 1 && recordOctets(keepDmarc as TxtRecord) <= MAX_DMARC_RECORD_OCTETS) {
    delete omitted.dmarc;
    kept.push(keepDmarc as TxtRecord);
  }
  if (kept.length === records.length) return answer;
  return withOmitted(answer, kept, omitted);
}

function withOmitted(answer: LookupResult<TxtRecord>, records: TxtRecord[], omitted: OmittedTxt): LookupResult<TxtRecord> {
  const prior = answer.omitted;
  if (prior) {
    omitted.spf += prior.spf;
    omitted.other += prior.other;
    if (prior.dmarc) omitted.dmarc = (omitted.dmarc ?? 0) + prior.dmarc;
  }
  return { records, nxdomain: answer.nxdomain, ttl: answer.ttl, omitted };
}

/** All records of the answer, kept or left out. */
export function txtRecordCount(answer: LookupResult<TxtRecord>): number {
  const o = answer.omitted;
  return answer.records.length + (o ? o.spf + o.other + (o.dmarc ?? 0) : 0);
}
