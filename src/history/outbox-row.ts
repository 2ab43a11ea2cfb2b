/** An outbox row as both backends return it. */
import type { OutboxEntry } from './types.js';

export interface OutboxRow {
  id: number | string;
  run_id: number | string;
  domain: string;
  channel: 'webhook' | 'email';
  recipient: string;
  kind: 'newly-broken' | 'fixed';
  payload: string;
  attempts: number;
  created_at: string;
}

export function rowToEntry(r: OutboxRow): OutboxEntry {
  return {
    id: Number(r.id),
    runId: Number(r.run_id),
    domain: r.domain,
    channel: r.channel,
    recipient: r.recipient,
    kind: r.kind,
    payload: JSON.parse(r.payload) as OutboxEntry['payload'],
    attempts: Number(r.attempts),
    createdAt: r.created_at,
  };
}
