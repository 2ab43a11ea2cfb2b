/**
 * Data-driven policy scenarios: YAML files of cases (test/scenarios/*.yml), each played
 * through the real daemon (startDaemon) with a milter client that behaves like Postfix's
 * milter8.c: it offers version 6 / all actions / all protocol bits, honours the negotiated
 * SMFIP_NO* and SMFIP_NR_* bits, sends per stage only the macros the milter asked for (or
 * Postfix's defaults), `i` only from the second RCPT on and at DATA/EOH/EOM, and ABORT
 * after every message. Checks: the final end-of-message reply, the X-SOS-Milter header and
 * log phrases.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { startDaemon, type Daemon } from '../../src/daemon/run.js';
import { Cmd, MacroStage, ProtoFlag, type MilterResponse } from '../../src/milter/index.js';
import { encodePacketUnchecked } from './milter-codec.js';
import type { KnotOptions } from './knot.js';
import type { SlapdOptions } from './slapd.js';
import { MilterTestClient, type ClientTarget, type Reply } from './milter-client.js';

export interface RcptSpec {
  to: string;
  /** `{rcpt_host}`; absent (or null) means Postfix did not send the macro. */
  rcpt_host?: string | null;
}

export interface Expectation {
  /** `continue`, or a reply code with enhanced status such as `550 5.7.1` / `450 4.7.1`. */
  reply: string;
  /** Regular expression for the reply text after the codes, `%%` already turned back into `%`. */
  text?: string;
  /** Regular expression for the reply text after the codes exactly as on the wire. */
  wire_text?: string;
  /** `present`: X-SOS-Milter: failed SPF-expectation was added; `none`: no header was added. */
  header?: 'present' | 'none';
  /** Phrases (substrings; `/re/` for a regular expression) that must appear in this message's log lines. */
  log?: string[];
  /** Phrases that must not appear. */
  no_log?: string[];
}

export interface MessageSpec {
  from: string;
  rcpts?: RcptSpec[];
  /** Macros Postfix would send but this message omits (`i`, `{rcpt_host}`, ...). */
  omit_macros?: string[];
  expect: Expectation;
}

export interface ScenarioCase extends Partial<MessageSpec> {
  name: string;
  /** Connect address (inet or inet6 by its form); `none` sends family unknown. Default 192.0.2.10. */
  client?: string;
  /** Sent as `{client_addr}` at CONNECT when given. */
  client_addr?: string;
  helo?: string;
  /** Several messages on one milter connection, judged one after the other. */
  messages?: MessageSpec[];
}

export interface ScenarioFile {
  file: string;
  description: string;
  /** Daemon environment; `LDAP: on` expands to the LDAP_* variables of the test slapd. */
  env: Record<string, string>;
  cases: ScenarioCase[];
}

export interface ScenarioServers {
  dnsPort: number;
  ldapUrl: string;
  ldapSearchBase: string;
}

const repoPath = (p: string): string => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

/** Knot for the policy tests: SERVFAIL for broken.test, no answer at or below hang.sos.test. */
export const POLICY_DNS: KnotOptions = {
  zonesDir: repoPath('test/data/dns/policy'),
  servfailZones: ['broken.test'],
  timeoutNames: ['hang.sos.test'],
  // Twice the scenarios' DNS_TIMEOUT_MS: the client gives up first, and the Knot worker a hung
  // proxy holds is free again soon (UDP queries are hashed to workers; one may land on a busy one).
  blackholeTimeoutMs: 800,
};
export const POLICY_LDAP: SlapdOptions = { ldif: repoPath('test/data/ldap/policy.ldif'), suffix: 'dc=sos,dc=test' };
export const SCENARIOS_DIR = repoPath('test/scenarios');

export class ScenarioFormatError extends Error {
  override name = 'ScenarioFormatError';
}

const DEFAULT_RCPTS: RcptSpec[] = [{ to: '<r@x.example>', rcpt_host: 'x.example' }];
const REPLY_RE = /^(continue|[45]\d\d [245]\.\d{1,3}\.\d{1,3})$/;

function fail(file: string, where: string, what: string): never {
  throw new ScenarioFormatError(`${file}: ${where}: ${what}`);
}

function checkExpectation(file: string, where: string, e: unknown): Expectation {
  if (typeof e !== 'object' || e === null) fail(file, where, 'expect is missing');
  const x = e as Expectation;
  if (typeof x.reply !== 'string' || !REPLY_RE.test(x.reply)) fail(file, where, `expect.reply must be "continue" or e.g. "550 5.7.1", got ${JSON.stringify(x.reply)}`);
  if (x.header !== undefined && x.header !== 'present' && x.header !== 'none') fail(file, where, 'expect.header must be present or none');
  for (const re of [x.text, x.wire_text]) if (re !== undefined) new RegExp(re);
  return x;
}

function checkMessage(file: string, where: string, m: Partial<MessageSpec>): MessageSpec {
  if (typeof m.from !== 'string') fail(file, where, 'from is missing');
  if (m.rcpts !== undefined && (!Array.isArray(m.rcpts) || m.rcpts.some((r) => typeof r?.to !== 'string'))) fail(file, where, 'rcpts must be a list of { to, rcpt_host }');
  return { from: m.from, rcpts: m.rcpts, omit_macros: m.omit_macros, expect: checkExpectation(file, where, m.expect) };
}

export function parseScenarioFile(file: string, text: string): ScenarioFile {
  const doc = parseYaml(text) as Partial<ScenarioFile> | null;
  if (!doc || typeof doc.description !== 'string') fail(file, 'top', 'description is missing');
  if (!Array.isArray(doc.cases) || doc.cases.length === 0) fail(file, 'top', 'cases is missing or empty');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc.env ?? {})) env[k] = String(v);
  const cases = doc.cases.map((c: ScenarioCase, i) => {
    const where = `case ${i + 1} (${c?.name ?? 'unnamed'})`;
    if (typeof c?.name !== 'string') fail(file, where, 'name is missing');
    if (c.messages !== undefined) {
      if (!Array.isArray(c.messages) || c.messages.length === 0) fail(file, where, 'messages must be a non-empty list');
      return { ...c, messages: c.messages.map((m, j) => checkMessage(file, `${where} message ${j + 1}`, m)) };
    }
    return { ...c, ...checkMessage(file, where, c) };
  });
  return { file, description: doc.description, env, cases };
}

export function loadScenarioFiles(dir: string): ScenarioFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
    .sort()
    .map((f) => parseScenarioFile(f, readFileSync(join(dir, f), 'utf8')));
}

/** The environment the daemon of one scenario file runs with. */
export function scenarioEnv(env: Record<string, string>, servers: ScenarioServers): Record<string, string> {
  const out: Record<string, string> = {
    MILTER_SOCKET: 'inet:0@127.0.0.1',
    DNS_SERVERS: `127.0.0.1:${servers.dnsPort}`,
    DNS_TIMEOUT_MS: '400',
  };
  for (const [k, v] of Object.entries(env)) {
    if (k !== 'LDAP') out[k] = v;
    else if (/^(on|true|yes|1)$/i.test(v)) {
      Object.assign(out, {
        LDAP_ENABLED: '1',
        LDAP_SERVER_URI: servers.ldapUrl,
        LDAP_SEARCH_BASE: servers.ldapSearchBase,
        LDAP_QUERY_FILTER: '(dc=%d)',
        LDAP_TIMEOUT_MS: '500',
        ...Object.fromEntries(Object.entries(env).filter(([key]) => key.startsWith('LDAP_'))),
      });
    }
  }
  return out;
}

/** Log lines of a running daemon, kept in order. */
export class LogCapture {
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
  get mark(): number {
    return this.lines.length;
  }
  since(mark: number): string[] {
    return this.lines.slice(mark);
  }
}

export interface ScenarioDaemon {
  daemon: Daemon;
  logs: LogCapture;
  target: ClientTarget;
  stop(): Promise<void>;
}

export async function startScenarioDaemon(env: Record<string, string>): Promise<ScenarioDaemon> {
  const logs = new LogCapture();
  const daemon = await startDaemon(env, { logDestination: logs });
  const target = daemon.server.address();
  if (!target) throw new Error('daemon did not report its milter address');
  return { daemon, logs, target, stop: () => daemon.stop() };
}

// Postfix's default macro lists (postconf milter_*_macros), used for stages the milter did not ask about.
const POSTFIX_DEFAULT_MACROS: Record<number, string[]> = {
  [MacroStage.CONNECT]: ['j', '{daemon_name}', '{daemon_addr}', 'v', '_'],
  [MacroStage.HELO]: ['{tls_version}', '{cipher}', '{cipher_bits}', '{cert_subject}', '{cert_issuer}'],
  [MacroStage.ENVFROM]: ['i', '{auth_type}', '{auth_authen}', '{auth_author}', '{mail_addr}', '{mail_host}', '{mail_mailer}'],
  [MacroStage.ENVRCPT]: ['i', '{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}'],
  [MacroStage.DATA]: ['i'],
  [MacroStage.EOH]: ['i'],
  [MacroStage.EOM]: ['i'],
};

const bare = (name: string): string => name.replace(/^\{(.*)\}$/, '$1');

/** One milter connection that plays messages like Postfix smtpd does. */
export class PostfixLikeSession {
  private requested = new Map<number, Set<string>>();
  private constructor(private readonly client: MilterTestClient) {}

  static async open(target: ClientTarget, c: Pick<ScenarioCase, 'client' | 'client_addr' | 'helo'> = {}, timeoutMs = 15_000): Promise<PostfixLikeSession> {
    const client = await MilterTestClient.connect(target, timeoutMs);
    const session = new PostfixLikeSession(client);
    try {
      const neg = await client.negotiate({ version: 6, actions: 0x1ff, protocol: 0x1fffff });
      for (const list of neg.symbolLists) session.requested.set(list.stage, new Set(list.names.split(/\s+/).filter(Boolean).map(bare)));
      await session.connect(c);
    } catch (err) {
      client.close();
      throw err;
    }
    return session;
  }

  private has(flag: number): boolean {
    return (this.client.protocol & flag) !== 0;
  }

  /** The macros of one stage: what the milter asked for (or Postfix's defaults) and is available. */
  private macros(stage: number, available: Record<string, string | undefined>): [string, string][] {
    const wanted = this.requested.get(stage) ?? new Set((POSTFIX_DEFAULT_MACROS[stage] ?? []).map(bare));
    const out: [string, string][] = [];
    for (const [name, value] of Object.entries(available)) {
      if (value !== undefined && wanted.has(bare(name))) out.push([name.length === 1 ? name : `{${bare(name)}}`, value]);
    }
    return out;
  }

  /** Sends `D` (when there is anything to send) and the command; checks that no early verdict came. */
  private async step(stage: number | undefined, available: Record<string, string | undefined>, send: (m: [string, string][] | undefined) => Promise<Reply>): Promise<void> {
    const pairs = stage === undefined ? [] : this.macros(stage, available);
    const reply = await send(pairs.length > 0 ? pairs : undefined);
    if (reply.final && reply.final.type !== 'continue') assert.fail(`the milter answered ${describe(reply.final)} before end of message`);
  }

  private async connect(c: Pick<ScenarioCase, 'client' | 'client_addr' | 'helo'>): Promise<void> {
    const address = c.client ?? '192.0.2.10';
    const available = {
      j: 'mx.sos.test',
      '{daemon_name}': 'smtpd',
      '{daemon_addr}': '127.0.0.1',
      v: 'Postfix 3.7.11',
      _: `client.example [${address}]`,
      '{client_addr}': c.client_addr,
      '{client_name}': 'client.example',
    };
    if (!this.has(ProtoFlag.NOCONNECT)) {
      await this.step(MacroStage.CONNECT, available, (m) =>
        address === 'none'
          ? this.client.command({ type: 'connect', hostname: 'unknown', family: 'unknown' }, m)
          : this.client.connectCmd('client.example', address, 50000, m),
      );
    }
    if (!this.has(ProtoFlag.NOHELO)) await this.step(MacroStage.HELO, {}, (m) => this.client.helo(c.helo ?? 'client.example', m));
  }

  /** Plays one message up to end of message, then ABORT (as Postfix does after every transaction). */
  async message(m: MessageSpec): Promise<MessageResult> {
    const omit = new Set((m.omit_macros ?? []).map(bare));
    const drop = (available: Record<string, string | undefined>) =>
      Object.fromEntries(Object.entries(available).filter(([k]) => !omit.has(bare(k))));
    const queueId = randomQueueId();
    // Macro values are C strings in every MTA: a NUL ends them.
    const mailAddr = m.from.split('\0')[0]!.replace(/^<|>$/g, '');
    if (!this.has(ProtoFlag.NOMAIL)) {
      await this.step(MacroStage.ENVFROM, drop({ '{mail_addr}': mailAddr, '{mail_mailer}': 'smtp' }), (x) => this.mail(m.from, x));
    }
    const rcpts = m.rcpts ?? DEFAULT_RCPTS;
    for (let n = 0; n < rcpts.length; n++) {
      const r = rcpts[n]!;
      if (this.has(ProtoFlag.NORCPT)) continue;
      const available = drop({
        i: n > 0 ? queueId : undefined,
        '{rcpt_addr}': r.to.replace(/^<|>$/g, ''),
        '{rcpt_host}': r.rcpt_host ?? undefined,
        '{rcpt_mailer}': 'smtp',
      });
      await this.step(MacroStage.ENVRCPT, available, (x) => this.client.rcpt(r.to, [], x));
    }
    const withId = drop({ i: queueId });
    if (!this.has(ProtoFlag.NODATA)) await this.step(MacroStage.DATA, withId, (x) => this.client.data(x));
    if (!this.has(ProtoFlag.NOHDRS)) {
      const headers: [string, string][] = [
        ['From', ` ${mailAddr || 'MAILER-DAEMON'}`],
        ['To', ` ${rcpts.map((r) => r.to.replace(/^<|>$/g, '')).join(', ')}`],
        ['Subject', ' scenario'],
        ['Message-ID', ` <${queueId}@mx.sos.test>`],
      ];
      for (const [name, value] of headers) await this.step(undefined, {}, () => this.client.header(name, value));
    }
    if (!this.has(ProtoFlag.NOEOH)) await this.step(MacroStage.EOH, withId, (x) => this.client.eoh(x));
    if (!this.has(ProtoFlag.NOBODY)) await this.step(undefined, {}, () => this.client.body('Hello.\r\n'));
    const eomMacros = this.macros(MacroStage.EOM, withId);
    const reply = await this.client.eom(eomMacros.length > 0 ? eomMacros : undefined);
    this.client.abort();
    if (!reply.final) assert.fail('no reply at end of message');
    return { queueId, final: reply.final, modifications: reply.modifications };
  }

  /**
   * MAIL with the sender as given. A NUL inside cannot be encoded as one milter string: it is
   * written raw, so the milter sees the part before the NUL as the sender and the rest as an
   * ESMTP argument, as a broken or hostile MTA would send it.
   */
  private mail(from: string, macros: [string, string][] | undefined): Promise<Reply> {
    if (!from.includes('\0')) return this.client.mail(from, [], macros);
    if (macros) this.client.sendMacros('mail', macros);
    this.client.sendRaw(encodePacketUnchecked(Cmd.MAIL, Buffer.from(`${from}\0`, 'latin1')));
    return this.client.readReply(this.client.expectsReply({ type: 'mail', args: [from] }));
  }

  quit(): void {
    this.client.quit();
    this.client.close();
  }

  close(): void {
    this.client.close();
  }
}

export interface MessageResult {
  queueId: string;
  final: MilterResponse;
  modifications: MilterResponse[];
}

function randomQueueId(): string {
  let id = '';
  for (let i = 0; i < 10; i++) id += '0123456789ABCDEF'[Math.floor(Math.random() * 16)];
  return id;
}

function describe(r: MilterResponse): string {
  return r.type === 'replyCode' ? `"${r.text}"` : r.type;
}

export const REJECT_ID_RE = /^[45]\d\d \d\.\d{1,3}\.\d{1,3} [^:]+: ([a-z0-9]{8}) /;

/** Checks one message's result against its expectation; `log` holds the lines written meanwhile. */
export function assertExpectation(result: MessageResult, expect: Expectation, log: string[]): void {
  const logText = log.join('');
  const context = `\n-- reply: ${describe(result.final)}\n-- log:\n${logText}`;
  if (expect.reply === 'continue') {
    assert.equal(result.final.type, 'continue', `expected continue${context}`);
  } else {
    assert.equal(result.final.type, 'replyCode', `expected ${expect.reply}${context}`);
    const text = (result.final as Extract<MilterResponse, { type: 'replyCode' }>).text;
    assert.ok(!text.includes('\r\n'), `single-line reply expected${context}`);
    assert.ok(text.startsWith(`${expect.reply} `), `expected ${expect.reply}${context}`);
    const wire = text.slice(expect.reply.length + 1);
    // A lone % never appears on the wire: libmilter and Postfix take %% as a literal %.
    assert.doesNotMatch(wire.replaceAll('%%', ''), /%/, `unescaped % in the reply${context}`);
    if (expect.wire_text !== undefined) assert.match(wire, new RegExp(expect.wire_text), `reply text on the wire${context}`);
    if (expect.text !== undefined) assert.match(wire.replaceAll('%%', '%'), new RegExp(expect.text), `reply text${context}`);
  }
  const headers = result.modifications.filter((m) => (m.type === 'addHeader' || m.type === 'insHeader') && m.name.toLowerCase() === 'x-sos-milter');
  if (expect.header === 'present') {
    assert.equal(headers.length, 1, `expected one X-SOS-Milter header${context}`);
    assert.equal((headers[0] as { value: string }).value.trim(), 'failed SPF-expectation');
  } else if (expect.header === 'none') {
    assert.equal(headers.length, 0, `expected no X-SOS-Milter header${context}`);
  }
  const others = result.modifications.filter((m) => !headers.includes(m) && m.type !== 'progress');
  assert.deepEqual(others, [], `unexpected modifications${context}`);
  for (const phrase of expect.log ?? []) assert.ok(phraseIn(phrase, logText), `log lacks ${JSON.stringify(phrase)}${context}`);
  for (const phrase of expect.no_log ?? []) assert.ok(!phraseIn(phrase, logText), `log has ${JSON.stringify(phrase)}${context}`);
}

function phraseIn(phrase: string, text: string): boolean {
  const re = /^\/(.*)\/$/s.exec(phrase);
  return re ? new RegExp(re[1]!, 'm').test(text) : text.includes(phrase);
}

export function caseMessages(c: ScenarioCase): MessageSpec[] {
  return c.messages ?? [c as MessageSpec];
}

/** Plays a case on a new milter connection; returns the reject ids seen (for uniqueness checks). */
export async function playCase(sd: ScenarioDaemon, c: ScenarioCase): Promise<string[]> {
  const session = await PostfixLikeSession.open(sd.target, c);
  const ids: string[] = [];
  try {
    for (const m of caseMessages(c)) {
      const mark = sd.logs.mark;
      const result = await session.message(m);
      // Log lines of the verdict are written before the reply leaves; give the writer a turn anyway.
      await new Promise((r) => setImmediate(r));
      const lines = sd.logs.since(mark);
      assertExpectation(result, m.expect, lines);
      if (result.final.type === 'replyCode') {
        const id = REJECT_ID_RE.exec(result.final.text)?.[1];
        if (id) ids.push(id);
      }
      // Every log line about a message the milter judged carries the queue id.
      if (lines.some((l) => /: judged /.test(l))) {
        assert.ok(lines.some((l) => l.includes(`/${result.queueId}: `) && /: judged /.test(l)), `summary line without queue id:\n${lines.join('')}`);
      }
    }
    session.quit();
  } finally {
    session.close();
  }
  return ids;
}
