/**
 * The RFC5322.From domain, from the From: header field's value (RFC 5322 §3.4 with the obsolete
 * forms of §4.4 that still occur: obs-route, obs-local-part, folding anywhere). Display names
 * (atoms, quoted strings, RFC 2047 encoded words, which RFC 2047 §5(3) keeps free of specials in
 * a phrase), comments (nested, skipped with a depth counter: no recursion), groups
 * (`Team: a@x, b@y;`, `undisclosed-recipients:;`) and address lists are understood. What comes
 * out is a defined result for every input:
 *
 *  - `one`: exactly one mailbox, or several with one and the same domain (DMARCbis §4.4: the
 *    domain is then unambiguous);
 *  - `several`: mailboxes with different domains; receivers differ (RFC 7489 §6.6.1), so no
 *    single policy is predicted;
 *  - `none`: no mailbox (an empty value, an empty group);
 *  - `invalid`: no address can be read, with the reason (syntax, an address literal as domain,
 *    a value longer than MAX_FROM_OCTETS).
 *
 * The domain is as written (lower case, trailing dot dropped): the caller checks it as a DNS
 * name and maps U-labels to A-labels (the policy's senderDomain).
 */

/** Octets of one From: value parsed at most; the milter keeps no more than this of the header. */
export const MAX_FROM_OCTETS = 4096;
/** Mailboxes read from one value at most. */
const MAX_MAILBOXES = 64;

export type FromResult =
  | { kind: 'one'; address: string; domain: string; mailboxes: number }
  | { kind: 'several'; domains: string[] }
  | { kind: 'none' }
  | { kind: 'invalid'; reason: string };

type Token = { t: 'word'; v: string } | { t: 'quoted'; v: string } | { t: 'literal'; v: string } | { t: 'special'; v: string };

const SPECIALS = '()<>[]:;@\\,"';

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

/** Splits the value into words, quoted strings, domain literals and specials; comments and folding are dropped. */
function tokenize(s: string): Token[] | string {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (isSpace(c)) {
      i++;
    } else if (c === '(') {
      let depth = 0;
      for (; i < s.length; i++) {
        const d = s[i];
        if (d === '\\') i++;
        else if (d === '(') depth++;
        else if (d === ')' && --depth === 0) break;
      }
      if (depth !== 0) return 'unterminated comment';
      i++;
    } else if (c === '"') {
      let v = '';
      for (i++; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        if (s[i] !== '\r' && s[i] !== '\n') v += s[i];
      }
      if (i >= s.length) return 'unterminated quoted string';
      i++;
      out.push({ t: 'quoted', v });
    } else if (c === '[') {
      const end = s.indexOf(']', i);
      if (end < 0) return 'unterminated domain literal';
      out.push({ t: 'literal', v: s.slice(i, end + 1) });
      i = end + 1;
    } else if (c === ')' || c === ']' || c === '\\') {
      return `stray "${c}"`;
    } else if (SPECIALS.includes(c) || c === '>') {
      out.push({ t: 'special', v: c });
      i++;
    } else {
      let j = i;
      while (j < s.length && !isSpace(s[j]) && !SPECIALS.includes(s[j]) && s[j] !== '>') j++;
      out.push({ t: 'word', v: s.slice(i, j) });
      i = j;
    }
  }
  return out;
}

/** local-part "@" domain from the tokens of an addr-spec; the domain is one dot-atom. */
function addrSpec(tokens: Token[]): { address: string; domain: string } | string {
  let at = -1;
  for (let k = tokens.length - 1; k >= 0; k--) {
    if (tokens[k].t === 'special' && tokens[k].v === '@') {
      at = k;
      break;
    }
  }
  if (at < 0) return 'no @ in the address';
  const local = tokens.slice(0, at);
  const domainTokens = tokens.slice(at + 1);
  if (local.length === 0 || local.some((t) => t.t === 'special' || t.t === 'literal')) return 'bad local part';
  if (domainTokens.length !== 1) return 'bad domain';
  const d = domainTokens[0];
  if (d.t === 'literal') return 'address literal, no domain';
  if (d.t !== 'word') return 'bad domain';
  let domain = d.v.toLowerCase();
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (domain === '' || domain.startsWith('.') || domain.includes('..')) return 'bad domain';
  const localText = local.map((t) => (t.t === 'quoted' ? `"${t.v}"` : t.v)).join('');
  return { address: `${localText}@${domain}`, domain };
}

/** One mailbox (name-addr or addr-spec) from its tokens. */
function mailbox(tokens: Token[]): { address: string; domain: string } | string {
  const open = tokens.findIndex((t) => t.t === 'special' && t.v === '<');
  if (open < 0) return addrSpec(tokens);
  const close = tokens.findIndex((t, k) => k > open && t.t === 'special' && t.v === '>');
  if (close < 0) return 'unterminated angle address';
  if (close !== tokens.length - 1) return 'text after the angle address';
  if (tokens.slice(0, open).some((t) => t.t === 'special' || t.t === 'literal')) return 'bad display name';
  let inner = tokens.slice(open + 1, close);
  // obs-route: "<@relay1,@relay2:user@domain>"
  if (inner.length > 0 && inner[0].t === 'special' && inner[0].v === '@') {
    const colon = inner.findIndex((t) => t.t === 'special' && t.v === ':');
    if (colon < 0) return 'bad route';
    inner = inner.slice(colon + 1);
  }
  return addrSpec(inner);
}

/** Parses a From: field's value (unfolded or not). */
export function parseFromHeader(value: string): FromResult {
  if (value.length > MAX_FROM_OCTETS) return { kind: 'invalid', reason: `From: longer than ${MAX_FROM_OCTETS} octets` };
  const tokens = tokenize(value);
  if (typeof tokens === 'string') return { kind: 'invalid', reason: tokens };
  const found: { address: string; domain: string }[] = [];
  let current: Token[] = [];
  let inAngle = false;
  let inGroup = false;
  const finish = (): string | undefined => {
    if (current.length === 0) return undefined; // empty list elements are allowed (obs-mbox-list)
    const m = mailbox(current);
    current = [];
    if (typeof m === 'string') return m;
    found.push(m);
    return undefined;
  };
  for (const tok of tokens) {
    if (tok.t === 'special' && !inAngle) {
      if (tok.v === ',') {
        const err = finish();
        if (err) return { kind: 'invalid', reason: err };
        if (found.length > MAX_MAILBOXES) return { kind: 'invalid', reason: `more than ${MAX_MAILBOXES} mailboxes` };
        continue;
      }
      if (tok.v === ':' && !inGroup) {
        if (current.length === 0 || current.some((t) => t.t === 'special' || t.t === 'literal')) return { kind: 'invalid', reason: 'bad group name' };
        current = [];
        inGroup = true;
        continue;
      }
      if (tok.v === ';' && inGroup) {
        const err = finish();
        if (err) return { kind: 'invalid', reason: err };
        inGroup = false;
        continue;
      }
      if (tok.v === '<') inAngle = true;
    } else if (tok.t === 'special' && tok.v === '>') {
      inAngle = false;
    }
    current.push(tok);
  }
  if (inGroup) return { kind: 'invalid', reason: 'unterminated group' };
  const err = finish();
  if (err) return { kind: 'invalid', reason: err };
  if (found.length === 0) return { kind: 'none' };
  const domains = [...new Set(found.map((m) => m.domain))];
  if (domains.length > 1) return { kind: 'several', domains };
  return { kind: 'one', address: found[0].address, domain: domains[0], mailboxes: found.length };
}
