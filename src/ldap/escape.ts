/**
 * RFC 4515 filter value escaping: the ONE helper through which any value enters an LDAP
 * filter. `*`, `(`, `)`, `\` and NUL must be escaped (section 3); every non-ASCII octet of
 * the UTF-8 encoding and every other control character is escaped too, so the filter text
 * stays printable ASCII whatever the sender domain holds.
 */

function mustEscape(byte: number): boolean {
  return byte < 0x20 || byte >= 0x7f || byte === 0x2a /* * */ || byte === 0x28 /* ( */ || byte === 0x29 /* ) */ || byte === 0x5c; /* \ */
}

export function escapeFilterValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += mustEscape(byte) ? `\\${byte.toString(16).padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

/** Replaces every `%d` in the filter template with the escaped domain. */
export function buildFilter(template: string, domain: string): string {
  // split/join rather than String.replace: a replacement string would interpret `$&` etc.
  return template.split('%d').join(escapeFilterValue(domain));
}
