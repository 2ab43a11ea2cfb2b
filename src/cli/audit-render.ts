// The audit's report in its three formats (JSON lines, CSV, a terminal table) and its summary.
import { remedyText } from '../policy/index.js';
import type { AuditFormat } from './audit-args.js';
import { changeLines, type HistoryRunResult } from './audit-history.js';
import { lookupsUsed, terminalLine, terminalQuoted, type DomainReport, type DomainStatus } from './domain-report.js';

export interface AuditSummary {
  domains: number;
  byStatus: Record<DomainStatus, number>;
  byResult: Record<string, number>;
  seconds: number;
}

export function summarize(reports: readonly DomainReport[], seconds: number): AuditSummary {
  const summary: AuditSummary = { domains: reports.length, byStatus: { pass: 0, fail: 0, unjudged: 0 }, byResult: {}, seconds };
  for (const r of reports) {
    summary.byStatus[r.status]++;
    summary.byResult[r.result] = (summary.byResult[r.result] ?? 0) + 1;
  }
  return summary;
}

function summaryLine(s: AuditSummary): string {
  const results = Object.entries(s.byResult)
    .sort((a, b) => b[1] - a[1])
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  return `audited ${s.domains} domains in ${s.seconds.toFixed(1)} s: pass ${s.byStatus.pass}, fail ${s.byStatus.fail}, unjudged ${s.byStatus.unjudged} (results: ${results || 'none'})`;
}

function budgetText(r: DomainReport): string {
  if (!r.budget) return '';
  return `${lookupsUsed(r.budget)}${r.budget.warning ? ` ! ${r.budget.warning}` : ''}`;
}

/** JSON lines: plain values only, the remedy as an object. */
function jsonLine(r: DomainReport, history?: HistoryRunResult): string {
  const change = history?.byDomain.get(r.domain);
  return JSON.stringify({
    domain: r.domain,
    status: r.status,
    result: r.result,
    action: r.actions,
    record: r.record ?? null,
    recordDomain: r.recordDomain,
    reason: r.reason,
    remedy: r.remedy.kind === 'none' ? null : r.remedy.kind === 'record' ? { kind: 'record', record: r.remedy.record, change: r.remedy.change, note: r.remedy.note } : r.remedy,
    lookups: r.budget ?? null,
    ...(history ? { change: change?.kind ?? null, since: change?.since ?? null } : {}),
    ...(r.dmarc ? { dmarc: r.dmarc } : {}),
  });
}

const CSV_HEADER = ['domain', 'status', 'result', 'action_test', 'action_reject', 'record', 'reason', 'remedy', 'suggested_record', 'lookups', 'lookup_warning'];
/** Appended with the DMARC columns (DMARC_CHECK=on or --dmarc). */
const CSV_DMARC_HEADER = ['dmarc_policy', 'dmarc_record_domain', 'dmarc_spf_aligned', 'dmarc_dkim_signing', 'dmarc_verdict', 'dmarc_reason'];

function dmarcFields(r: DomainReport): string[] {
  const d = r.dmarc;
  if (!d) return ['', '', '', '', '', ''];
  return [d.policy, d.recordDomain ?? '', d.spfAligned, d.dkimSigning, d.verdict, d.reason];
}

/** `reject (p at example.com)`, `no-policy`. */
function dmarcPolicyText(r: DomainReport): string {
  const d = r.dmarc;
  if (!d) return '-';
  return d.recordDomain ? `${d.policy} (${d.tag} at ${d.recordDomain})` : d.policy;
}

/** RFC 4180: quote every field that holds a comma, quote, CR or LF; double the quotes. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function csvLine(r: DomainReport, dmarc: boolean, history?: HistoryRunResult): string {
  const change = history?.byDomain.get(r.domain);
  return [
    r.domain,
    r.status,
    r.result,
    r.actions.test,
    r.actions.reject,
    r.record ?? '',
    r.reason,
    remedyText(r.remedy),
    r.remedy.kind === 'record' ? r.remedy.record : '',
    r.budget ? `${r.budget.used}/${r.budget.limit}` : '',
    r.budget?.warning ?? '',
    ...(dmarc ? dmarcFields(r) : []),
    ...(history ? [change?.kind ?? '', change?.since ?? ''] : []),
  ]
    .map(csvField)
    .join(',');
}

/** Records can hold any printable text; keep one domain per line on a terminal. */
function tableLines(reports: readonly DomainReport[], dmarc: boolean): string[] {
  const head = ['DOMAIN', 'STATUS', 'RESULT', 'TEST', 'REJECT', 'LOOKUPS', ...(dmarc ? ['DMARC', 'SPF-ALIGNED', 'DKIM-SIGNING', 'DMARC-VERDICT'] : [])];
  const rows = reports.map((r) => [
    r.domain,
    r.status,
    r.result,
    r.actions.test,
    r.actions.reject,
    r.budget ? lookupsUsed(r.budget) : '-',
    ...(dmarc ? [dmarcPolicyText(r), r.dmarc?.spfAligned ?? '-', r.dmarc?.dkimSigning ?? '-', r.dmarc?.verdict ?? '-'] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const pad = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const lines = [pad(head)];
  reports.forEach((r, i) => {
    lines.push(terminalLine(pad(rows[i]!)).trimEnd());
    lines.push(`    record: ${r.record === undefined ? '(none)' : terminalQuoted(r.record)}${r.recordDomain ? ` (of ${terminalLine(r.recordDomain)}, via redirect)` : ''}`);
    lines.push(terminalLine(`    reason: ${r.reason}`));
    if (r.budget?.warning) lines.push(terminalLine(`    lookups: ${budgetText(r)}`));
    if (r.remedy.kind !== 'none') lines.push(terminalLine(`    remedy: ${remedyText(r.remedy)}`));
    if (r.dmarc && r.dmarc.verdict !== 'pass') lines.push(terminalLine(`    dmarc: ${r.dmarc.reason}`));
  });
  return lines;
}

/** Writes the shown reports and the summary: the report to `out`; with CSV the summary to `err`, so that stdout stays one table. */
export interface HistoryView {
  result: HistoryRunResult;
  changesOnly: boolean;
  /** Added to the JSON summary: changes, notifications, history_write_seconds, ... */
  summary: Record<string, unknown>;
}

export function renderAudit(
  format: AuditFormat,
  shown: readonly DomainReport[],
  summary: AuditSummary,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
  options: { dmarc?: boolean; history?: HistoryView } = {},
): void {
  const dmarc = options.dmarc ?? false;
  const history = options.history;
  const h = history?.result;
  if (format === 'json') {
    for (const r of shown) out.write(`${jsonLine(r, h)}\n`);
    out.write(`${JSON.stringify({ summary: { ...summary, ...history?.summary } })}\n`);
  } else if (format === 'csv') {
    out.write(`${[...CSV_HEADER, ...(dmarc ? CSV_DMARC_HEADER : []), ...(h ? ['change', 'since'] : [])].join(',')}\r\n`);
    for (const r of shown) out.write(`${csvLine(r, dmarc, h)}\r\n`);
    err.write(`${summaryLine(summary)}\n`);
    if (history) err.write(`${changeLines(history.result, history.changesOnly).join('\n')}\n`);
  } else {
    if (shown.length > 0) out.write(`${tableLines(shown, dmarc).join('\n')}\n\n`);
    if (history) out.write(`${changeLines(history.result, history.changesOnly).join('\n')}\n`);
    out.write(`${summaryLine(summary)}\n`);
  }
}
