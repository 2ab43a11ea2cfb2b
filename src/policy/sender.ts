import { domainToASCII } from 'node:url';

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
  let domain = address.slice(at + 1).trim();
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  if (domain === '') return { kind: 'no-domain', address, reason: 'empty domain' };
  if (domain.startsWith('[')) return { kind: 'no-domain', address, reason: 'address literal, no domain' };

  // UTF-8 domains are looked up as A-labels; domainToASCII also lower-cases and rejects junk.
  const ascii = domainToASCII(domain);
  if (ascii === '' || ascii.length > 253) return { kind: 'no-domain', address, reason: `unusable domain "${domain}"` };
  return { kind: 'domain', address, domain: ascii.toLowerCase() };
}
