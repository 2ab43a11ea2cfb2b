/**
 * The webhook: one JSON POST per notification, signed with HMAC-SHA256 over
 * `<timestamp>.<body>` with the configured secret (header `X-SOS-Signature: sha256=<hex>`,
 * `X-SOS-Timestamp: <unix seconds>`), `X-SOS-Delivery: <id>` stable across retries so the
 * receiver can drop a repeat. Retried with exponential backoff on a network error, a
 * timeout, 408, 429 and 5xx; any other status is final.
 */
import { createHmac } from 'node:crypto';
import type { OutboxEntry } from '../history/types.js';
import type { DeliveryResult } from './types.js';

export interface WebhookOptions {
  url: string;
  secret: string;
  /** Per attempt. */
  timeoutMs: number;
  /** Attempts in this run, the first included. */
  attempts: number;
  /** First pause between attempts; doubled after each. */
  backoffMs: number;
  sleep?: (ms: number) => Promise<void>;
}

export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

const RETRIED = (status: number) => status === 408 || status === 429 || status >= 500;

export function webhookBody(entry: OutboxEntry): string {
  return JSON.stringify({ ...entry.payload, delivery_id: String(entry.id) });
}

export function createWebhookSender(options: WebhookOptions): { send(entry: OutboxEntry): Promise<DeliveryResult> } {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  return {
    async send(entry) {
      const body = webhookBody(entry);
      let last = '';
      for (let attempt = 1; attempt <= options.attempts; attempt++) {
        if (attempt > 1) await sleep(options.backoffMs * 2 ** (attempt - 2));
        const timestamp = String(Math.floor(Date.now() / 1000));
        try {
          const res = await fetch(options.url, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'user-agent': 'sos-milter-audit',
              'x-sos-delivery': String(entry.id),
              'x-sos-timestamp': timestamp,
              'x-sos-signature': signature(options.secret, timestamp, body),
            },
            body,
            redirect: 'error',
            signal: AbortSignal.timeout(options.timeoutMs),
          });
          await res.arrayBuffer().catch(() => undefined);
          if (res.ok) return { ok: true, attempts: attempt };
          last = `HTTP ${res.status}`;
          if (!RETRIED(res.status)) return { ok: false, attempts: attempt, error: `webhook answered ${last}`, permanent: true, channelDown: false };
        } catch (e) {
          const err = e as Error & { cause?: { code?: string; message?: string } };
          last = err.name === 'TimeoutError' ? `no answer within ${options.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
        }
      }
      return { ok: false, attempts: options.attempts, error: `webhook failed after ${options.attempts} attempts: ${last}`, permanent: false, channelDown: true };
    },
  };
}
