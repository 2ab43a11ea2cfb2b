/**
 * The DKIM signing domains an own-domain entry names in LDAP_DKIM_ATTRIBUTE: LDAP holds
 * whatever was written into it, so each value must be a domain name (lower-case A-labels, as
 * a MAIL FROM domain is checked); the others are ignored, and each such value is logged once
 * (a bounded number of them: a directory full of junk must not grow memory or flood the log).
 */
import type { Logger } from '../log/index.js';
import { senderDomain } from '../policy/index.js';

/** Signing domains kept per entry at most. */
export const MAX_DKIM_VALUES = 8;
/** A value longer than this is not read (a domain name has at most 253 characters; U-labels take more). */
export const MAX_DKIM_VALUE_LENGTH = 1024;
/** Distinct invalid values logged at most per process. */
const MAX_LOGGED_INVALID = 1000;

export class DkimValueChecker {
  private readonly logged = new Set<string>();
  private loggedFull = false;

  constructor(
    private readonly attribute: string,
    private readonly logger: Logger,
  ) {}

  /** The valid signing domains among `values` (the entry of `domain`), each once, at most MAX_DKIM_VALUES. */
  domains(domain: string, values: readonly string[]): string[] {
    const out: string[] = [];
    for (const raw of values) {
      if (out.length >= MAX_DKIM_VALUES) {
        this.invalid(domain, raw, `more than ${MAX_DKIM_VALUES} values: the rest are ignored`);
        break;
      }
      const value = raw.trim();
      const checked = value.length > MAX_DKIM_VALUE_LENGTH ? { reason: 'too long' } : senderDomain(value);
      if (typeof checked !== 'string') this.invalid(domain, raw, checked.reason);
      else if (!out.includes(checked)) out.push(checked);
    }
    return out;
  }

  private invalid(domain: string, value: string, reason: string): void {
    const key = value.length > 256 ? `${value.slice(0, 256)}…` : value;
    if (this.logged.has(key)) return;
    if (this.logged.size >= MAX_LOGGED_INVALID) {
      if (!this.loggedFull) this.logger.warn({ attribute: this.attribute }, `more than ${MAX_LOGGED_INVALID} distinct invalid ${this.attribute} values: no more are logged`);
      this.loggedFull = true;
      return;
    }
    this.logged.add(key);
    this.logger.warn({ domain, attribute: this.attribute, value: key, reason }, `ignoring a ${this.attribute} value that is no DKIM signing domain`);
  }
}
