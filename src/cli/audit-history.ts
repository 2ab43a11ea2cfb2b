/**
 * `audit --history`: what the audit adds when it remembers. The run's outcomes are committed
 * to the history (one transaction, with the notifications each change owes: the outbox), the
 * outbox is delivered (webhook, mail to the domain's contact), and the last run's metrics are
 * written. Kept apart from the audit's listing and judging, which know nothing of it.
 */
import { rename, writeFile } from 'node:fs/promises';
import type { AuditHistoryConfig } from '../config/index.js';
import type { HistoryStore, RunCommit } from '../history/store.js';
import type { ChangeSets, Channel, DomainChange, DomainOutcome } from '../history/types.js';
import { openHistory } from '../history/open.js';
import { checkAddress, isMailDomain } from '../notify/address.js';
import { deliverOutbox, type DeliveryReport } from '../notify/deliver.js';
import { createMailSender } from '../notify/email.js';
import { renderNotification } from '../notify/render.js';
import type { Sender } from '../notify/types.js';
import { createWebhookSender, webhookBody } from '../notify/webhook.js';
import type { Logger } from '../log/index.js';
import { errorMessage } from '../log/error-message.js';
import { remedyText } from '../policy/index.js';
import type { DomainReport, DomainStatus } from './domain-report.js';

export { openHistory };

export function outcomeOf(r: DomainReport, contacts: readonly string[]): DomainOutcome {
  return {
    domain: r.domain,
    status: r.status,
    result: r.result,
    // DNS failed or the judge itself failed: the run cannot tell, the last known state stands.
    unknown: r.remedy.kind === 'unknown' || r.result === 'temperror' || r.result === 'error',
    record: r.record ?? null,
    reason: r.reason,
    suggested: r.remedy.kind === 'record' ? r.remedy.record : null,
    remedy: r.remedy.kind === 'none' ? null : remedyText(r.remedy),
    lookups: r.budget ? { used: r.budget.used, limit: r.budget.limit, ...(r.budget.warning ? { warning: r.budget.warning } : {}) } : null,
    contacts,
  };
}

export interface HistoryRunResult {
  commit: RunCommit;
  delivery: DeliveryReport | undefined;
  /** Contact values refused (hostile or malformed), per domain. */
  refusedContacts: { domain: string; value: string; reason: string }[];
  /** Per domain: the change and since when. */
  byDomain: Map<string, DomainChange>;
  /** --dry-run: the notifications that would be sent, rendered. */
  wouldSend: string[];
  /** Wall time of the history transaction (read states, write the run), seconds. */
  writeSeconds: number;
}

function senders(hconf: AuditHistoryConfig): Promise<Partial<Record<Channel, Sender>>> {
  const out: Partial<Record<Channel, Sender>> = {};
  if (hconf.webhook) out.webhook = createWebhookSender(hconf.webhook);
  if (!hconf.mail) return Promise.resolve(out);
  const m = hconf.mail;
  return createMailSender({
    url: m.url,
    from: m.from,
    requireTls: m.requireTls,
    timeoutMs: m.timeoutMs,
    ...(m.user !== undefined ? { user: m.user } : {}),
    ...(m.password !== undefined ? { password: m.password } : {}),
    ...(hconf.serviceName !== undefined ? { render: { serviceName: hconf.serviceName } } : {}),
  }).then((mail) => ({ ...out, email: mail }));
}

/** Commits the run, then delivers the outbox (or, with dryRun, shows what would be sent and writes nothing). */
export async function recordRun(
  store: HistoryStore,
  hconf: AuditHistoryConfig,
  run: { startedAt: Date; reports: readonly DomainReport[]; contacts: ReadonlyMap<string, readonly string[]>; dryRun: boolean },
  logger: Logger,
): Promise<HistoryRunResult> {
  const refusedContacts: HistoryRunResult['refusedContacts'] = [];
  const outcomes = run.reports.map((r) => outcomeOf(r, run.contacts.get(r.domain) ?? []));
  const recipients = (change: DomainChange) => {
    const list: { channel: Channel; recipient: string }[] = [];
    if (hconf.webhook) list.push({ channel: 'webhook', recipient: '' });
    if (hconf.mail) {
      const seen = new Set<string>();
      for (const value of change.outcome.contacts) {
        const checked = checkAddress(value);
        if (!checked.ok) refusedContacts.push({ domain: change.domain, value, reason: checked.reason });
        else if (!isMailDomain(change.domain)) refusedContacts.push({ domain: change.domain, value, reason: 'the domain is not a host name' });
        else if (!seen.has(checked.address.toLowerCase())) {
          seen.add(checked.address.toLowerCase());
          list.push({ channel: 'email', recipient: checked.address });
        }
      }
    }
    return list;
  };
  const writeStarted = process.hrtime.bigint();
  const commit = await store.commitRun({ startedAt: run.startedAt, finishedAt: new Date(), outcomes, recipients }, { dryRun: run.dryRun });
  const writeSeconds = Number(process.hrtime.bigint() - writeStarted) / 1e9;
  for (const c of refusedContacts) logger.warn({ domain: c.domain, contact: c.value, reason: c.reason }, 'audit: contact address refused, no mail to it');
  const byDomain = new Map<string, DomainChange>();
  for (const set of Object.values(commit.changes) as DomainChange[][]) for (const c of set) byDomain.set(c.domain, c);

  const wouldSend: string[] = [];
  if (run.dryRun) {
    const service = hconf.serviceName !== undefined ? { serviceName: hconf.serviceName } : {};
    const pending = await store.pending(hconf.maxNotificationsPerRun);
    const queued = commit.outbox.map((n, i) => ({ id: -(i + 1), runId: commit.runId, domain: n.domain, channel: n.channel, recipient: n.recipient, kind: n.kind, payload: JSON.parse(n.payload) as ReturnType<typeof JSON.parse>, attempts: 0, createdAt: '' }));
    for (const e of [...pending, ...queued].slice(0, hconf.maxNotificationsPerRun)) {
      if (e.channel === 'webhook') wouldSend.push(`would POST to ${hconf.webhook?.url ?? '(no webhook)'}: ${webhookBody(e)}`);
      else {
        const m = renderNotification(e.payload, service);
        wouldSend.push(`would mail ${e.recipient} through ${hconf.mail?.url ?? '(no relay)'}:\nSubject: ${m.subject}\n\n${m.text}`);
      }
    }
    return { commit, delivery: undefined, refusedContacts, byDomain, wouldSend, writeSeconds };
  }

  const channels = await senders(hconf);
  try {
    const delivery = await deliverOutbox(store, {
      maxPerRun: hconf.maxNotificationsPerRun,
      senders: channels,
      onResult: (e, outcome, error) => {
        const fields = { domain: e.domain, channel: e.channel, ...(e.recipient ? { recipient: e.recipient } : {}), event: e.payload.event, delivery: e.id };
        if (outcome === 'sent') logger.info(fields, 'audit: notification sent');
        else logger.warn({ ...fields, error }, outcome === 'given-up' ? 'audit: notification given up' : 'audit: notification failed, kept for the next run');
      },
    });
    return { commit, delivery, refusedContacts, byDomain, wouldSend, writeSeconds };
  } finally {
    for (const s of Object.values(channels)) s.close?.();
  }
}

export function changeCounts(c: ChangeSets): Record<string, number> {
  return { newly_broken: c.newlyBroken.length, fixed: c.fixed.length, still_broken: c.stillBroken.length, unchanged: c.unchanged.length, unknown: c.unknown.length };
}

export function deliverySummary(d: DeliveryReport | undefined): Record<string, unknown> | undefined {
  if (!d) return undefined;
  return {
    sent: d.sent,
    failed: d.failed.map((f) => ({ domain: f.entry.domain, channel: f.entry.channel, error: f.error, given_up: f.final })),
    deferred: d.deferred,
    ...(Object.keys(d.channelDown).length ? { channel_down: d.channelDown } : {}),
  };
}

/** The table's change sections: newly broken, fixed, still broken with since when, and counts. */
export function changeLines(result: HistoryRunResult, changesOnly: boolean): string[] {
  const c = result.commit.changes;
  const lines: string[] = [];
  const day = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const section = (title: string, items: DomainChange[], since: boolean) => {
    lines.push(`${title} (${items.length}):`);
    for (const i of items) lines.push(`    ${i.domain}  ${i.outcome.status}${since ? `  since ${day(i.since)}` : ''}`);
  };
  section('newly broken', c.newlyBroken, false);
  section('fixed', c.fixed, false);
  if (!changesOnly) section('still broken', c.stillBroken, true);
  lines.push(`unchanged: ${c.unchanged.length}${c.unknown.length ? `; not judged this run (DNS failure; last known state kept): ${c.unknown.length}` : ''}`);
  const d = result.delivery;
  if (d) {
    lines.push(`notifications: sent ${d.sent.webhook} webhook, ${d.sent.email} mail; failed ${d.failed.length}; waiting for the next run ${d.deferred}`);
    for (const [ch, why] of Object.entries(d.channelDown)) lines.push(`    ${ch} unreachable, its notifications wait for the next run: ${why}`);
    for (const f of d.failed.filter((x) => x.final)) lines.push(`    given up: ${f.entry.channel} for ${f.entry.domain}${f.entry.recipient ? ` to ${f.entry.recipient}` : ''}: ${f.error}`);
  }
  for (const r of result.refusedContacts) lines.push(`    contact refused for ${r.domain}: ${JSON.stringify(r.value)} (${r.reason})`);
  return lines;
}

/** Prometheus text format of the last run (textfile collector or Pushgateway). */
export function metricsText(run: { byStatus: Record<DomainStatus, number>; seconds: number; finishedAt: Date; complete: boolean; result?: HistoryRunResult | undefined; pending?: number | undefined }): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${v}`);
  };
  metric('sos_milter_audit_last_run_timestamp_seconds', 'When the last audit run ended (Unix time).', [['', Math.floor(run.finishedAt.getTime() / 1000)]]);
  metric('sos_milter_audit_last_run_complete', '1 when the last audit run completed, 0 when it could not (LDAP, history).', [['', run.complete ? 1 : 0]]);
  metric('sos_milter_audit_last_run_duration_seconds', 'Wall time of the last audit run.', [['', Number(run.seconds.toFixed(3))]]);
  metric('sos_milter_audit_domains', 'Own domains by audit status in the last run.', (Object.entries(run.byStatus) as [string, number][]).map(([s, n]) => [`{status="${s}"}`, n]));
  metric('sos_milter_audit_broken_domains', 'Own domains that do not pass (fail or unjudged) in the last run.', [['', run.byStatus.fail + run.byStatus.unjudged]]);
  if (run.result) {
    const counts = changeCounts(run.result.commit.changes);
    metric('sos_milter_audit_changes', 'Own domains by change against the history in the last run.', Object.entries(counts).map(([k, n]) => [`{change="${k}"}`, n]));
    metric('sos_milter_audit_newly_broken_domains', 'Own domains that turned broken in the last run.', [['', counts.newly_broken!]]);
    const d = run.result.delivery;
    if (d) {
      const failed = (ch: Channel) => d.failed.filter((f) => f.entry.channel === ch).length;
      metric('sos_milter_audit_notifications', 'Notifications of the last run by channel and outcome.', [
        ['{channel="webhook",outcome="sent"}', d.sent.webhook],
        ['{channel="email",outcome="sent"}', d.sent.email],
        ['{channel="webhook",outcome="failed"}', failed('webhook')],
        ['{channel="email",outcome="failed"}', failed('email')],
      ]);
    }
  }
  if (run.pending !== undefined) metric('sos_milter_audit_notifications_pending', 'Notifications waiting in the outbox after the last run.', [['', run.pending]]);
  return `${lines.join('\n')}\n`;
}

/** Writes the textfile atomically (a temp file renamed over it) and/or PUTs it to the Pushgateway; failures are logged, never fatal. */
export async function publishMetrics(hconf: AuditHistoryConfig, text: string, logger: Logger): Promise<void> {
  if (hconf.metricsFile) {
    const tmp = `${hconf.metricsFile}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, text, { mode: 0o644 });
      await rename(tmp, hconf.metricsFile);
    } catch (e) {
      logger.error({ file: hconf.metricsFile, err: errorMessage(e) }, 'audit: cannot write AUDIT_METRICS_FILE');
    }
  }
  if (hconf.metricsPushUrl) {
    try {
      const res = await fetch(hconf.metricsPushUrl, { method: 'PUT', headers: { 'content-type': 'text/plain; version=0.0.4' }, body: text, signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
    } catch (e) {
      logger.error({ url: hconf.metricsPushUrl, err: errorMessage(e) }, 'audit: cannot push to AUDIT_METRICS_PUSH_URL');
    }
  }
}
