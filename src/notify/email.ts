/**
 * Mail to the domain's contact through the ESP's SMTP relay, with nodemailer. The recipient
 * is checked again here (address.ts) however it got into the outbox; the domain must be a
 * host name, as it appears in the subject. The Message-ID is derived from the notification's
 * id, the same on every retry.
 */
import type { OutboxEntry } from '../history/types.js';
import { checkAddress, isMailDomain } from './address.js';
import { renderNotification, type RenderOptions } from './render.js';
import type { DeliveryResult, Sender } from './types.js';

export interface MailOptions {
  /** smtp://host[:port] (STARTTLS when offered) or smtps://host[:port]. */
  url: string;
  user?: string;
  password?: string;
  /** A plain address: the envelope sender and From. */
  from: string;
  /** Refuse to send unless STARTTLS succeeds. */
  requireTls: boolean;
  timeoutMs: number;
  render?: RenderOptions;
}

/** Errors that say the relay cannot be reached or talked to: every later mail would fail alike. */
const CHANNEL_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ETLS', 'EAUTH', 'ECONNREFUSED']);

export async function createMailSender(options: MailOptions): Promise<Sender> {
  const nodemailer = (await import('nodemailer')).default;
  const url = new URL(options.url);
  const secure = url.protocol === 'smtps:';
  const transport = nodemailer.createTransport({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    requireTLS: options.requireTls,
    ...(options.user ? { auth: { user: options.user, pass: options.password ?? '' } } : {}),
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const fromDomain = options.from.slice(options.from.lastIndexOf('@') + 1);
  return {
    async send(entry: OutboxEntry): Promise<DeliveryResult> {
      const to = checkAddress(entry.recipient);
      if (!to.ok) return { ok: false, attempts: 0, error: `contact address refused: ${to.reason}`, permanent: true, channelDown: false };
      if (!isMailDomain(entry.domain)) return { ok: false, attempts: 0, error: 'domain is not a host name: no mail about it', permanent: true, channelDown: false };
      const message = renderNotification(entry.payload, options.render);
      try {
        await transport.sendMail({
          from: options.from,
          to: to.address,
          envelope: { from: options.from, to: [to.address] },
          subject: message.subject,
          text: message.text,
          messageId: `<sos-audit-${entry.id}@${fromDomain}>`,
          headers: { 'Auto-Submitted': 'auto-generated', 'X-SOS-Domain': entry.domain },
        });
        return { ok: true, attempts: 1 };
      } catch (e) {
        const err = e as Error & { code?: string; responseCode?: number };
        const permanent = err.responseCode !== undefined && err.responseCode >= 500 && err.code !== 'EAUTH';
        // No SMTP reply at all (connection, timeout, TLS) or a refused login: the relay is down for every mail.
        const channelDown = !permanent && (err.responseCode === undefined || err.code === 'EAUTH' || CHANNEL_CODES.has(err.code ?? ''));
        return { ok: false, attempts: 1, error: `SMTP relay ${url.host}: ${err.message}`, permanent, channelDown };
      }
    },
    close: () => transport.close(),
  };
}
