import { createRequire } from 'node:module';
import type { Tr46Options } from 'tr46';

/**
 * tr46 (UTS #46) is loaded on the first internationalised name only: its mapping table costs
 * about 4 MiB of RSS (measured with Node 20), which plain ASCII senders never need.
 */
let tr46: typeof import('tr46') | undefined;
function uts46(): typeof import('tr46') {
  return (tr46 ??= createRequire(import.meta.url)('tr46') as typeof import('tr46'));
}

/**
 * What the policy makes of an RFC 5321 MAIL FROM argument. Only senders with a usable
 * domain are judged; the null sender and domain-less senders cost no lookup.
 */
export type EnvelopeSender =
  | { kind: 'null' }
  | { kind: 'no-domain'; address: string; reason: string }
  | { kind: 'domain'; address: string; domain: string };

/** Accepts `<a@b>`, `a@b`, `<>`, `""` and source routes (`<@relay:a@b>`), as Postfix smtpd and non_smtpd milters send them. */
export function parseEnvelopeSender(raw: string): EnvelopeSender {
  let address = raw.trim();
  // A half-bracketed path is malformed; it is also what a NUL inside `<a@own.example\0x>`
  // leaves of the sender after the milter protocol has split the strings at the NUL, and
  // judging what precedes it would judge a domain the client never gave.
  if (address.startsWith('<') !== address.endsWith('>')) return { kind: 'no-domain', address, reason: 'unbalanced angle brackets' };
  if (address.startsWith('<')) address = address.slice(1, -1).trim();
  if (address === '') return { kind: 'null' };
  // RFC 5321 source route: "@one,@two:user@domain" — only the mailbox after ':' matters.
  if (address.startsWith('@') && address.includes(':')) address = address.slice(address.indexOf(':') + 1);

  const at = address.lastIndexOf('@');
  if (at < 0) return { kind: 'no-domain', address, reason: 'no @ in the sender' };
  const written = address.slice(at + 1).trim();
  const checked = senderDomain(written);
  if (typeof checked !== 'string') return { kind: 'no-domain', address, reason: checked.reason };
  return { kind: 'domain', address, domain: checked };
}

/**
 * The sender as SPF sees it (%{s}, %{l}, %{o}): the local part as given and the domain as
 * judged, so that the regex check and check_host() evaluate the very same domain.
 */
export function spfSender(sender: { address: string; domain: string }): string {
  return `${sender.address.slice(0, sender.address.lastIndexOf('@'))}@${sender.domain}`;
}

/**
 * RFC 5321 §4.1.2 Domain: sub-domains of Let-dig [Ldh-str], each at most 63 octets (RFC 1035
 * §2.3.4), joined by dots. One pattern for the whole name: a test per label cost 1 µs per
 * message at 1000 messages/s (`node dist/bench/profile.js --paced --cpu-prof`).
 */
export const LDH_DOMAIN = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** RFC 1035 §2.3.4: 255 octets on the wire, 253 characters as text without the final dot. */
const MAX_DOMAIN_LENGTH = 253;

/** IDNA2008 through UTS #46, non-transitional, with every check on: a U-label must map to a valid A-label. */
const UTS46_STRICT: Tr46Options = {
  checkBidi: true,
  checkHyphens: true,
  checkJoiners: true,
  useSTD3ASCIIRules: true,
  transitionalProcessing: false,
  verifyDNSLength: true,
};

/**
 * The lower-case A-label form of a MAIL FROM domain, or why it has none. Plain syntax, no URL
 * semantics: `\`, `/`, `?`, `#`, `%` or a numeric host form make the domain unusable instead
 * of cutting it short or turning it into an address.
 */
export function senderDomain(written: string): string | { reason: string } {
  let name = written;
  // A root-anchored name ("example.com.") is the same domain; Postfix accepts it.
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === '') return { reason: 'empty domain' };
  // RFC 5321 §4.1.3 address literal: there is no domain to judge.
  if (name.startsWith('[')) return { reason: 'address literal, no domain' };
  if (name.length > 4 * MAX_DOMAIN_LENGTH) return { reason: 'domain name too long' };

  // eslint-disable-next-line no-control-regex
  const ascii = /^[\x00-\x7f]*$/.test(name) ? name.toLowerCase() : uts46().toASCII(name, UTS46_STRICT);
  if (ascii === null) return { reason: `not a valid internationalised domain name ${quoted(written)}` };
  if (ascii.length > MAX_DOMAIN_LENGTH) return { reason: 'domain name too long' };
  if (!LDH_DOMAIN.test(ascii)) return { reason: `not an RFC 5321 domain ${quoted(written)}` };
  if (ascii.includes('xn--')) {
    for (const label of ascii.split('.')) {
      // An A-label must decode to a valid U-label (RFC 5890 §2.3.2.1), not merely look like one.
      if (label.startsWith('xn--') && uts46().toUnicode(label, UTS46_STRICT).error) return { reason: `invalid A-label ${JSON.stringify(label)}` };
    }
  }
  // No top-level domain is all-numeric (RFC 3696 §2): "192.0.2.1" or "0x7f.1" without brackets is no domain to judge.
  if (/^[0-9]+$/.test(ascii.slice(ascii.lastIndexOf('.') + 1))) return { reason: `numeric top-level label, not a domain ${quoted(written)}` };
  return ascii;
}

/** A rejected name for the log line, quoted and bounded. */
function quoted(written: string): string {
  return JSON.stringify(written.length > 80 ? `${written.slice(0, 77)}...` : written);
}
