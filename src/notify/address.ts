/**
 * Contact addresses and domains as they may enter a mail header. They come from LDAP and DNS,
 * which anyone with write access to either can fill: a value that is not a plain address
 * (CR, LF, a comma, angle brackets, quotes, spaces, non-ASCII) is refused, never repaired,
 * so no header can be injected and no second recipient added.
 */

const ATEXT = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A host name of LDH labels (A-labels included), at least two labels, at most 253 octets. */
export function isMailDomain(domain: string): boolean {
  const d = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (d.length === 0 || d.length > 253) return false;
  const labels = d.split('.');
  return labels.length >= 2 && labels.every((l) => LABEL.test(l));
}

/** The address in lower-case domain form, or the reason it is refused. */
export function checkAddress(raw: string): { ok: true; address: string } | { ok: false; reason: string } {
  const value = raw.trim();
  if (value.length === 0) return { ok: false, reason: 'empty' };
  if (value.length > 254) return { ok: false, reason: 'longer than 254 characters' };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(value)) return { ok: false, reason: 'contains control characters (header injection?)' };
  const at = value.lastIndexOf('@');
  if (at <= 0) return { ok: false, reason: 'no local part and domain' };
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (local.length > 64 || !ATEXT.test(local)) return { ok: false, reason: 'local part is not a plain dot-atom (quotes, spaces, commas, brackets or a second @ are refused)' };
  if (!isMailDomain(domain)) return { ok: false, reason: 'domain is not a host name' };
  return { ok: true, address: `${local}@${domain.toLowerCase()}` };
}

/** Text from outside (records, reasons) made safe for a plain-text body: controls shown as \uXXXX. */
export function plainText(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
