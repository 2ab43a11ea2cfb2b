/** Which domain names an LDAP entry of the own-domain tree stands for. */
import type { LdapListedEntry } from './client.js';

/** The value of a DN's first RDN, with RFC 4514 §2.4 escapes undone (`\,`, `\2C`). */
export function firstRdnValue(dn: string): string | undefined {
  const eq = dn.indexOf('=');
  if (eq < 0) return undefined;
  const bytes: number[] = [];
  for (let i = eq + 1; i < dn.length; i++) {
    const ch = dn[i]!;
    if (ch === ',' || ch === '+') break; // end of the RDN, or of its first attribute (multi-valued RDN)
    if (ch === '\\' && i + 1 < dn.length) {
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(dn[i + 1]!, 'utf8'));
        i += 1;
      }
      continue;
    }
    bytes.push(...Buffer.from(ch, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8').trim();
}

/** The entry's domains: every value of `attribute`, or the RDN's value when none is configured. */
export function domainsOfEntry(entry: LdapListedEntry, attribute: string | undefined): string[] {
  if (attribute === undefined) {
    const value = firstRdnValue(entry.dn);
    return value === undefined || value === '' ? [] : [value];
  }
  return entry.attributes[attribute.toLowerCase()] ?? [];
}
