/**
 * The customer-facing text of a notification: plain, short, with the current record, the
 * suggested one and why. The same text is the mail body and is printed by `--dry-run`.
 */
import type { NotificationPayload } from '../history/types.js';
import { plainText } from './address.js';

export interface RenderedMessage {
  subject: string;
  text: string;
}

export interface RenderOptions {
  /** Who the customer's mail is sent through, e.g. "Example Mail"; default "our mail service". */
  serviceName?: string;
}

function lookupsLine(p: NotificationPayload): string | undefined {
  if (!p.lookups) return undefined;
  return `It spends ${p.lookups.used} of the ${p.lookups.limit} DNS lookups SPF allows${p.lookups.warning ? ` (${plainText(p.lookups.warning)})` : ''}.`;
}

export function renderNotification(p: NotificationPayload, options: RenderOptions = {}): RenderedMessage {
  const service = options.serviceName ?? 'our mail service';
  const domain = plainText(p.domain);
  const current = p.record === null ? '(no SPF record published)' : plainText(p.record);
  const since = p.since.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  if (p.event === 'spf.fixed') {
    const lines = [
      'Hello,',
      '',
      `the SPF record of ${domain} is fine again: mail you send from ${domain} through ${service} passes SPF at your recipients (checked ${since}).`,
      '',
      'The record now published:',
      '',
      `    ${current}`,
      '',
      'Nothing more to do. Thank you!',
    ];
    return { subject: `SPF record of ${domain} is fixed`, text: `${lines.join('\n')}\n` };
  }
  const lines = [
    'Hello,',
    '',
    `we check the SPF record of ${domain} regularly. Since ${since} it does not let ${service} send mail for ${domain},`,
    'so your recipients may reject such mail or file it as spam.',
    '',
    `Why: ${plainText(p.reason)}`,
    '',
    `The record published now (TXT record of ${domain}):`,
    '',
    `    ${current}`,
    '',
  ];
  const budget = lookupsLine(p);
  if (budget && p.record !== null) lines.push(budget, '');
  if (p.suggested_record !== null) {
    lines.push('Please replace it with this record, in one TXT record at the same name:', '', `    ${plainText(p.suggested_record)}`, '');
    if (p.remedy) lines.push(`What changes: ${plainText(p.remedy)}`, '');
    lines.push('We checked the suggested record before sending this: it passes, within the 10 DNS lookups SPF allows.', '');
  } else if (p.remedy) {
    lines.push(`What to do: ${plainText(p.remedy)}`, '');
  }
  lines.push('If you have changed the record in the meantime, you need not do anything: we check again on our next run', 'and write once more when it is fixed.');
  return { subject: `Action needed: SPF record of ${domain}`, text: `${lines.join('\n')}\n` };
}
