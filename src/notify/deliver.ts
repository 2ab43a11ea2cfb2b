/**
 * Delivers the outbox: pending notifications, oldest first, at most `maxPerRun` of them in a
 * run (the rest wait for the next run). A channel that is down (the webhook failing after its
 * retries, the relay unreachable) is not tried again in this run: its notifications stay
 * pending, and the audit goes on. A notification whose delivery failed for good (a 4xx
 * webhook answer, a recipient the relay refuses) or has failed in MAX_RUN_ATTEMPTS runs is
 * given up and reported. Nothing is sent twice: each is marked sent right after delivery.
 */
import type { HistoryStore } from '../history/store.js';
import type { Channel, OutboxEntry } from '../history/types.js';
import type { Sender } from './types.js';

/** Runs in which a notification may fail before it is given up. */
export const MAX_RUN_ATTEMPTS = 10;

export interface DeliveryReport {
  sent: Record<Channel, number>;
  failed: { entry: OutboxEntry; error: string; final: boolean }[];
  /** Left pending: the rate limit was reached, or the channel is down or not configured. */
  deferred: number;
  channelDown: Partial<Record<Channel, string>>;
}

export interface DeliverOptions {
  maxPerRun: number;
  senders: Partial<Record<Channel, Sender>>;
  now?: () => Date;
  /** Called after each delivery attempt, for a log line. */
  onResult?: (entry: OutboxEntry, outcome: 'sent' | 'failed' | 'given-up', error?: string) => void;
}

export async function deliverOutbox(store: HistoryStore, options: DeliverOptions): Promise<DeliveryReport> {
  const report: DeliveryReport = { sent: { webhook: 0, email: 0 }, failed: [], deferred: 0, channelDown: {} };
  const now = options.now ?? (() => new Date());
  const total = await store.pendingCount();
  // Read once: pending rows beyond the limit are counted, not loaded.
  const entries = await store.pending(Math.max(0, options.maxPerRun) + 10_000);
  let tried = 0;
  for (const entry of entries) {
    const sender = options.senders[entry.channel];
    if (!sender || report.channelDown[entry.channel] !== undefined || tried >= options.maxPerRun) {
      report.deferred++;
      continue;
    }
    tried++;
    const result = await sender.send(entry);
    if (result.ok) {
      await store.markSent(entry.id, now());
      report.sent[entry.channel]++;
      options.onResult?.(entry, 'sent');
      continue;
    }
    const final = result.permanent || entry.attempts + 1 >= MAX_RUN_ATTEMPTS;
    await store.markFailed(entry.id, result.error, final);
    report.failed.push({ entry, error: result.error, final });
    options.onResult?.(entry, final ? 'given-up' : 'failed', result.error);
    if (result.channelDown) report.channelDown[entry.channel] = result.error;
  }
  report.deferred += Math.max(0, total - entries.length);
  return report;
}
