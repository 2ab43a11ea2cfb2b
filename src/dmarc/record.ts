/**
 * The DMARC policy record: its tag-value grammar (RFC 7489 §6.4, kept by DMARCbis) and the
 * tags that decide what a receiver does with a message that does not align: p, sp, np, adkim,
 * aspf, pct (RFC 7489) and t, psd (DMARCbis). Reporting tags (rua, ruf, fo, rf, ri) are read
 * only as far as RFC 7489 §6.6.3 needs them (is there a rua?), and unknown tags are ignored
 * (§6.3: "Unknown tags MUST be ignored").
 *
 * What makes a record invalid, and what an invalid value does:
 *  - the record must start with the version tag `v=DMARC1` (§6.4: "v" first, the value in
 *    upper case as the ABNF's %x44.4d.41.52.43.31 requires); anything else is not a DMARC
 *    record and is discarded before counting (§6.6.3 step 3);
 *  - a tag-spec that is not `name = value` (no `=`, an empty or non-alphanumeric name) makes
 *    the record unparseable: it is discarded like a non-DMARC record (`invalid`);
 *  - a missing or invalid `p` is read as `p=none` (DMARCbis §4.7; RFC 7489 §6.6.3 says the same
 *    when a rua is present and "no DMARC processing" otherwise: neither enforces anything, so
 *    for a prediction both read as "nothing enforced");
 *  - an invalid value of an optional tag (sp, np, adkim, aspf, pct, t, psd) leaves the tag at
 *    its default and is listed in `problems`.
 */
import { MAX_DMARC_RECORD_OCTETS } from '../dns/txt-bound.js';

export type DmarcPolicy = 'none' | 'quarantine' | 'reject';
export type AlignmentMode = 'r' | 's';

export interface DmarcRecord {
  /** Requested policy for the domain itself; `none` when p is missing or invalid (see pValid). */
  p: DmarcPolicy;
  /** Whether p was present with a valid value. */
  pValid: boolean;
  /** Subdomain policy, when given and valid. */
  sp?: DmarcPolicy;
  /** Policy for non-existent subdomains (DMARCbis, RFC 9091), when given and valid. */
  np?: DmarcPolicy;
  adkim: AlignmentMode;
  aspf: AlignmentMode;
  /** RFC 7489 pct, 0-100 (default 100). */
  pct: number;
  /** DMARCbis t=y: the policy is in test, receivers apply one level less. */
  testing: boolean;
  /** DMARCbis psd: y (a public suffix domain), n (an organizational domain), u (unknown, the default). */
  psd: 'y' | 'n' | 'u';
  /** A rua tag is present. */
  hasRua: boolean;
  /** Invalid values, each as "tag=value: why". Empty for a clean record. */
  problems: string[];
}

export type ParsedRecord = { kind: 'record'; record: DmarcRecord } | { kind: 'not-dmarc' } | { kind: 'invalid'; reason: string };

/** Octets of DMARC record text read: what the DNS cache keeps of one answer (dns/txt-bound.ts). */
export const MAX_RECORD_OCTETS = MAX_DMARC_RECORD_OCTETS;
/** Tags read from one record, at most: more is hostile, the rest is ignored. */
const MAX_TAGS = 64;

const POLICIES: ReadonlySet<string> = new Set(['none', 'quarantine', 'reject']);

/** RFC 5234 WSP, and the CR/LF a folded zone file line can leave behind. */
function isWsp(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

function trimWsp(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isWsp(s.charCodeAt(a))) a++;
  while (b > a && isWsp(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}

/** The record's text: the TXT record's character-strings concatenated (RFC 7489 §6.1, RFC 7208 §3.3). */
export function recordText(strings: readonly string[]): string {
  return strings.length === 1 ? strings[0] : strings.join('');
}

/**
 * Whether the text starts like a DMARC record (`v` WSP* `=` WSP* `DMARC1`, then `;`, WSP or the
 * end). Case: "v" is case-insensitive (ABNF quoted string), "DMARC1" is not (%x values).
 */
export function startsDmarcRecord(text: string): boolean {
  let i = 0;
  const n = text.length;
  while (i < n && isWsp(text.charCodeAt(i))) i++;
  if (i >= n || (text.charCodeAt(i) | 0x20) !== 0x76) return false;
  i++;
  while (i < n && isWsp(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) !== 0x3d) return false;
  i++;
  while (i < n && isWsp(text.charCodeAt(i))) i++;
  if (text.slice(i, i + 6) !== 'DMARC1') return false;
  i += 6;
  return i === n || text.charCodeAt(i) === 0x3b || isWsp(text.charCodeAt(i));
}

/** Parses one TXT record's text. */
export function parseDmarcRecord(text: string): ParsedRecord {
  if (!startsDmarcRecord(text)) return { kind: 'not-dmarc' };
  if (text.length > MAX_RECORD_OCTETS) return { kind: 'invalid', reason: `record longer than ${MAX_RECORD_OCTETS} octets` };
  const specs = text.split(';');
  const record: DmarcRecord = { p: 'none', pValid: false, adkim: 'r', aspf: 'r', pct: 100, testing: false, psd: 'u', hasRua: false, problems: [] };
  const seen = new Set<string>();
  for (let i = 1; i < specs.length && i <= MAX_TAGS; i++) {
    const spec = trimWsp(specs[i]);
    // dmarc-record ends with an optional ";" and whitespace: empty specs are separators only.
    if (spec === '') continue;
    const eq = spec.indexOf('=');
    if (eq < 0) return { kind: 'invalid', reason: `tag-spec without "=": ${clip(spec)}` };
    const name = trimWsp(spec.slice(0, eq)).toLowerCase();
    if (!/^[a-z0-9]+$/.test(name)) return { kind: 'invalid', reason: `bad tag name: ${clip(spec)}` };
    const value = trimWsp(spec.slice(eq + 1));
    // RFC 6376 tag-list semantics (which DMARC borrows): a tag given twice is an error; here the first wins.
    if (seen.has(name)) {
      record.problems.push(`${name}: given more than once, the first counts`);
      continue;
    }
    seen.add(name);
    applyTag(record, name, value);
  }
  return { kind: 'record', record };
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function applyTag(r: DmarcRecord, name: string, raw: string): void {
  const value = raw.toLowerCase();
  const bad = (why: string): void => {
    r.problems.push(`${name}=${clip(raw)}: ${why}`);
  };
  switch (name) {
    case 'p':
      if (POLICIES.has(value)) {
        r.p = value as DmarcPolicy;
        r.pValid = true;
      } else bad('not none, quarantine or reject; read as none');
      return;
    case 'sp':
    case 'np':
      if (POLICIES.has(value)) r[name] = value as DmarcPolicy;
      else bad('not none, quarantine or reject; ignored');
      return;
    case 'adkim':
    case 'aspf':
      if (value === 'r' || value === 's') r[name] = value;
      else bad('not r or s; relaxed');
      return;
    case 'pct':
      if (/^[0-9]{1,3}$/.test(value) && Number(value) <= 100) r.pct = Number(value);
      else bad('not 0-100; 100');
      return;
    case 't':
      if (value === 'y' || value === 'n') r.testing = value === 'y';
      else bad('not y or n; n');
      return;
    case 'psd':
      if (value === 'y' || value === 'n' || value === 'u') r.psd = value;
      else bad('not y, n or u; u');
      return;
    case 'rua':
      r.hasRua = value !== '';
      return;
    default:
      return;
  }
}

/** One step weaker: what a receiver applies to mail the policy does not select (pct) or while it is tested (t=y). */
export function weaker(p: DmarcPolicy): DmarcPolicy {
  return p === 'reject' ? 'quarantine' : 'none';
}

/**
 * The strongest disposition a receiver may apply to a message that does not align, under the
 * given policy: the policy itself, or one step weaker when pct=0 or t=y (RFC 7489 §6.6.4;
 * DMARCbis t=y). With 0 < pct < 100 some messages get the policy itself: a prediction must
 * assume the strongest.
 */
export function strongestDisposition(policy: DmarcPolicy, record: DmarcRecord): DmarcPolicy {
  if (record.testing || record.pct === 0) return weaker(policy);
  return policy;
}
