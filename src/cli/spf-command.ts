// `sos-milter spf IP SENDER [--helo NAME] [--json]`: one SPF evaluation against live DNS,
// printed as a tree of the include/redirect chain, or as JSON.
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import { ConfigError, loadConfig } from '../config/index.js';
import { environmentHelp } from '../config/variables.js';
import { createDnsParts, createSpfEvaluator } from '../app/policy-parts.js';
import { DEFAULT_LIMITS, SpfInputError, type SpfCheck, type SpfResult, type SpfTrace, type SpfTraceNode } from '../spf/index.js';
import { ExitCode } from '../app/exit-codes.js';
import { errorMessage } from '../log/index.js';

export const SPF_USAGE = 'usage: sos-milter spf IP SENDER [--helo NAME] [--json]   (SENDER "" or "<>" is the null sender)';

/**
 * Exit status by SPF result, so that scripts can branch on it: 0 the client is authorised,
 * 1 the domain says it is not, 2 the domain says nothing definite, 3 no answer could be had.
 */
export const SPF_EXIT_STATUS: Readonly<Record<SpfResult, number>> = Object.freeze({
  pass: 0,
  fail: 1,
  softfail: 1,
  neutral: 2,
  none: 2,
  temperror: 3,
  permerror: 3,
});

const HELP = `${SPF_USAGE}

Evaluates the SPF policy of SENDER's domain for a client at IP (RFC 7208 check_host)
against live DNS and prints the result with its evaluation trace.

  --helo NAME  HELO/EHLO name (%{h}; the identity checked for a null sender).
               Default: SENDER's domain.
  --json       print the result and trace as JSON
  -h, --help   show this help

Environment: read and checked as by the daemon, of which this command uses
${environmentHelp('spf')}
Exit status by result: 0 pass; 1 fail or softfail; 2 neutral or none;
3 temperror or permerror; ${ExitCode.USAGE} usage error; ${ExitCode.CONFIG} bad environment.
`;

class UsageError extends Error {}

interface SpfArgs {
  ip: string;
  sender: string;
  helo: string;
  json: boolean;
}

function parse(argv: string[]): SpfArgs | 'help' {
  // Tolerate being handed the subcommand word itself.
  const args = argv[0] === 'spf' ? argv.slice(1) : argv;
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { helo: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    });
  } catch (e) {
    throw new UsageError(errorMessage(e), { cause: e });
  }
  if (parsed.values.help) return 'help';
  if (parsed.positionals.length !== 2) throw new UsageError(`expected IP and SENDER, got ${parsed.positionals.length} argument(s)`);
  const [ip, rawSender] = parsed.positionals;
  if (isIP(ip) === 0) throw new UsageError(`not an IP address: ${JSON.stringify(ip)}`);
  const sender = rawSender === '<>' ? '' : rawSender.replace(/^<(.*)>$/, '$1');
  const at = sender.lastIndexOf('@');
  const helo = parsed.values.helo ?? (at >= 0 ? sender.slice(at + 1) : sender);
  if (helo === '') throw new UsageError('--helo NAME is required for a null sender');
  return { ip, sender, helo, json: parsed.values.json === true };
}

function quote(text: string): string {
  // Records may hold any octet; keep the output one line per node and unambiguous.
  return JSON.stringify(text);
}

function nodeLine(node: SpfTraceNode, decisive: SpfTrace['matched']): string {
  const parts: string[] = [];
  parts.push(node.via === 'check_host' ? node.domain : `${node.term ?? node.via} -> ${node.domain}`);
  if (node.record !== undefined) parts.push(quote(node.record));
  parts.push(`=> ${node.result ?? '?'}`);
  if (node.matched !== undefined) {
    const isDecisive = decisive !== undefined && decisive.term === node.matched && decisive.domain === node.domain;
    parts.push(`[matched ${node.matched}]${isDecisive ? ' <== decisive' : ''}`);
  }
  if (node.reason !== undefined && node.result !== 'pass' && node.matched === undefined) parts.push(`(${node.reason})`);
  return parts.join('  ');
}

function renderTree(node: SpfTraceNode, decisive: SpfTrace['matched'], prefix: string, isRoot: boolean, isLast: boolean, lines: string[]): void {
  const branch = isRoot ? '' : isLast ? '└─ ' : '├─ ';
  lines.push(prefix + branch + nodeLine(node, decisive));
  const childPrefix = isRoot ? prefix : prefix + (isLast ? '   ' : '│  ');
  node.children.forEach((child, i) => renderTree(child, decisive, childPrefix, false, i === node.children.length - 1, lines));
}

function formatSpfCheck(check: SpfCheck): string {
  const t = check.trace;
  const lines: string[] = [];
  lines.push(`SPF ${check.result} for ip=${t.ip} sender=${t.sender} helo=${t.helo} (domain ${t.domain})`);
  lines.push(`reason: ${check.reason}`);
  if (t.matched) lines.push(`matched: ${t.matched.term} (record of ${t.matched.domain})`);
  if (check.explanation !== undefined) lines.push(`explanation: ${check.explanation}${t.explanationSource ? ` (${t.explanationSource})` : ''}`);
  lines.push(`lookups: ${t.dnsTerms}/${DEFAULT_LIMITS.dnsMechanisms} DNS-querying terms, ${t.voidLookups}/${DEFAULT_LIMITS.voidLookups} void lookups`);
  if (t.root) {
    lines.push('', 'evaluation:');
    renderTree(t.root, t.matched, '  ', true, true, lines);
  }
  if (t.queries.length > 0) {
    lines.push('', `DNS queries (${t.queries.length}):`);
    for (const q of t.queries) {
      const detail = q.outcome === 'answer' ? `answer, ${q.answers} record(s)` : q.outcome === 'error' ? `error ${q.error ?? ''}`.trim() : q.outcome;
      lines.push(`  ${q.type.padEnd(4)} ${q.name}  ${detail}${q.void ? '  (void)' : ''}`);
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * Runs `sos-milter spf`. argv holds the arguments after the `spf` word. Output (including
 * usage errors) goes to `out`. Returns the exit status.
 */
export async function runSpfCommand(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  let args: SpfArgs | 'help';
  try {
    args = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    out.write(`sos-milter spf: ${e.message}\n${SPF_USAGE}\n`);
    return ExitCode.USAGE;
  }
  if (args === 'help') {
    out.write(HELP);
    return ExitCode.OK;
  }
  let config;
  try {
    config = loadConfig(env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    out.write(`sos-milter spf: configuration error: ${e.message}\n`);
    return ExitCode.CONFIG;
  }
  let check: SpfCheck;
  try {
    check = await createSpfEvaluator(createDnsParts(config).resolver).checkHost({ ip: args.ip, sender: args.sender, helo: args.helo });
  } catch (e) {
    if (!(e instanceof SpfInputError)) throw e;
    out.write(`sos-milter spf: ${e.message}\n${SPF_USAGE}\n`);
    return ExitCode.USAGE;
  }
  if (args.json) {
    const { result, explanation, reason, trace } = check;
    out.write(JSON.stringify({ result, explanation, reason, trace }, null, 2) + '\n');
  } else {
    out.write(formatSpfCheck(check));
  }
  return SPF_EXIT_STATUS[check.result];
}
