/**
 * RFC 7489 §3.2's organizational domain: the public suffix of a name and one label more, from
 * a Public Suffix List file (publicsuffix.org format; Debian's package "publicsuffix" installs
 * /usr/share/publicsuffix/public_suffix_list.dat). Used only when DMARC_PSL_FILE names a list:
 * the default is DMARCbis's DNS tree walk (discover.ts), which needs no list.
 *
 * Why no npm package: the algorithm is the list's own ("the rule with the most labels wins,
 * an exception rule wins over all, `*` is the default rule") and fits in this file, while the
 * packages that bundle a list (`psl`, `tldts`) ship a copy that ages with the release; a list
 * from the operating system's package is updated with the system.
 */
import { domainToASCII } from 'node:url';

export interface PublicSuffixList {
  /** The public suffix of a lower-case A-label name. */
  publicSuffix(domain: string): string;
  /** RFC 7489 §3.2: the public suffix plus one label; the name itself when it is a public suffix. */
  organizationalDomain(domain: string): string;
  readonly rules: number;
}

/** Lines of the list read at most, and the longest line kept: a list is ~10,000 rules. */
const MAX_RULES = 100_000;

export function parsePublicSuffixList(text: string): PublicSuffixList {
  const rules = new Set<string>();
  const exceptions = new Set<string>();
  let count = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim().split(/\s/, 1)[0];
    if (line === '' || line.startsWith('//')) continue;
    if (++count > MAX_RULES) break;
    const exception = line.startsWith('!');
    const rule = exception ? line.slice(1) : line;
    const ascii = rule
      .split('.')
      .map((l) => (l === '*' ? '*' : domainToASCII(l) || l.toLowerCase()))
      .join('.');
    (exception ? exceptions : rules).add(ascii);
  }
  const publicSuffix = (domain: string): string => {
    const labels = domain.split('.');
    // From the longest candidate down: the first match is the rule with the most labels.
    for (let i = 0; i < labels.length; i++) {
      const candidate = labels.slice(i).join('.');
      if (exceptions.has(candidate)) return labels.slice(i + 1).join('.');
      const wild = i + 1 < labels.length ? `*.${labels.slice(i + 1).join('.')}` : '';
      if (rules.has(candidate) || (wild !== '' && rules.has(wild))) return candidate;
    }
    return labels[labels.length - 1];
  };
  return {
    rules: rules.size + exceptions.size,
    publicSuffix,
    organizationalDomain(domain: string): string {
      const suffix = publicSuffix(domain);
      if (suffix.length >= domain.length) return domain;
      const rest = domain.slice(0, domain.length - suffix.length - 1);
      const dot = rest.lastIndexOf('.');
      return `${rest.slice(dot + 1)}.${suffix}`;
    },
  };
}
