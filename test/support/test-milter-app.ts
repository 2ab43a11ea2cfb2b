// A configurable milter application for the library's integration tests (Postfix, miltertest).
// It records what each stage saw and answers with verdicts chosen per test: by default from
// trigger words in the envelope and Subject (see triggerRules), or from rules set by the test.
import { Verdict, type MilterApplication, type MilterContext } from '../../src/milter/index.js';

/** Library-independent verdict descriptions, so tests read the same whatever the API spells. */
export type TestVerdict =
  | { kind: 'continue' }
  | { kind: 'accept' }
  | { kind: 'reject' }
  | { kind: 'tempfail' }
  | { kind: 'discard' }
  | { kind: 'reply'; code: number; enhanced?: string; text: string | string[] };

export interface ConnectRecord {
  hostname: string;
  family: string;
  address?: string;
  port?: number;
  /** Macros visible in the connect callback, bare names. */
  macros: Record<string, string>;
}

export interface RcptRecord {
  address: string;
  args: string[];
  macros: Record<string, string>;
}

export interface MessageRecord {
  /** 1-based number of this transaction within its milter connection (counted at MAIL). */
  seq: number;
  sender: string;
  mailArgs: string[];
  mailMacros: Record<string, string>;
  rcpts: RcptRecord[];
  dataSeen: boolean;
  headers: [string, string][];
  eohSeen: boolean;
  bodyBytes: number;
  /** Macros visible at end of message (undefined until EOM). */
  eomMacros?: Record<string, string>;
  /** Headers the app added at EOM. */
  added: [string, string][];
  /** Final verdict given at some stage (undefined while still continuing). */
  verdict?: { stage: string; verdict: TestVerdict };
  aborted: boolean;
}

export interface SessionRecord {
  id: string;
  connect?: ConnectRecord;
  helo?: string;
  messages: MessageRecord[];
  unknown: string[];
  closed: boolean;
}

/** Each rule may return a verdict; undefined means continue. */
export interface TestRules {
  connect?(c: ConnectRecord): TestVerdict | undefined;
  helo?(name: string, s: SessionRecord): TestVerdict | undefined;
  envfrom?(m: MessageRecord, s: SessionRecord): TestVerdict | undefined;
  envrcpt?(r: RcptRecord, m: MessageRecord, s: SessionRecord): TestVerdict | undefined;
  eom?(m: MessageRecord, s: SessionRecord): TestVerdict | undefined;
  /** Headers to add at EOM when the message is not refused there (default: addTestHeaders). */
  addHeaders?(m: MessageRecord, s: SessionRecord): [string, string][];
}

const has = (s: string | undefined, word: string): boolean => (s ?? '').toLowerCase().includes(word);
const subjectOf = (m: MessageRecord): string => m.headers.find(([n]) => n.toLowerCase() === 'subject')?.[1] ?? '';

/** Texts used by triggerRules, exported so tests compare with the same strings. */
export const TRIGGER_REPLIES = {
  mail: { kind: 'reply', code: 550, enhanced: '5.7.1', text: 'Sender refused by test milter: 100% sure' },
  rcpt: { kind: 'reply', code: 450, enhanced: '4.2.0', text: ['Recipient deferred by test milter', 'please try again later'] },
  eom: { kind: 'reply', code: 554, enhanced: '5.7.0', text: 'Message refused by test milter (100% sure)' },
  eomMulti: {
    kind: 'reply',
    code: 554,
    enhanced: '5.7.0',
    text: ['Message refused by test milter', 'second line with 50% off', 'last line'],
  },
} as const satisfies Record<string, TestVerdict>;

function trigger(subject: string, stage: string): TestVerdict | undefined {
  if (has(subject, `reject-${stage}`)) return { kind: 'reject' };
  if (has(subject, `tempfail-${stage}`)) return { kind: 'tempfail' };
  if (has(subject, `discard-${stage}`)) return { kind: 'discard' };
  if (has(subject, `accept-${stage}`)) return { kind: 'accept' };
  return undefined;
}

/** Default headers added at EOM: what the milter saw, so end-to-end tests can check delivery. */
export function addTestHeaders(m: MessageRecord, s: SessionRecord): [string, string][] {
  const eom = m.eomMacros ?? {};
  const rcptHosts = m.rcpts.map((r) => r.macros['rcpt_host'] ?? '(none)');
  return [
    ['X-Test-Milter', `msg=${m.seq}`],
    ['X-Test-Queue-Id', eom['i'] ?? '(none)'],
    ['X-Test-Client', s.connect?.macros['client_addr'] ?? '(none)'],
    ['X-Test-Rcpt-Host', rcptHosts.length ? rcptHosts.join(',') : '(none)'],
  ];
}

/**
 * Trigger words (case-insensitive): a sender containing `reject-mail` / `tempfail-mail` /
 * `reply-mail` / `discard-mail` / `accept-mail` gets that verdict at MAIL; the same with `-rcpt`
 * in a recipient at RCPT; with `-eom` (and `reply-multi-eom`) in the Subject at end of message;
 * a connect hostname or HELO name containing `reject-connect` / `reject-helo` is rejected there.
 */
export const triggerRules: TestRules = {
  connect: (c) => trigger(c.hostname, 'connect'),
  helo: (name) => trigger(name, 'helo'),
  envfrom: (m) => (has(m.sender, 'reply-mail') ? TRIGGER_REPLIES.mail : trigger(m.sender, 'mail')),
  envrcpt: (r) => (has(r.address, 'reply-rcpt') ? TRIGGER_REPLIES.rcpt : trigger(r.address, 'rcpt')),
  eom: (m) => {
    const subject = subjectOf(m);
    if (has(subject, 'reply-multi-eom')) return TRIGGER_REPLIES.eomMulti;
    if (has(subject, 'reply-eom')) return TRIGGER_REPLIES.eom;
    return trigger(subject, 'eom');
  },
  addHeaders: addTestHeaders,
};

export function toVerdict(v: TestVerdict | undefined): Verdict {
  switch (v?.kind) {
    case undefined:
    case 'continue':
      return Verdict.continue();
    case 'accept':
      return Verdict.accept();
    case 'reject':
      return Verdict.reject();
    case 'tempfail':
      return Verdict.tempfail();
    case 'discard':
      return Verdict.discard();
    case 'reply':
      return Verdict.reply(v.code, v.enhanced, v.text);
  }
}

export interface TestMilterApp {
  readonly app: MilterApplication;
  /** Every milter connection seen, oldest first. */
  readonly sessions: SessionRecord[];
  /** Replaces the rules (a missing rule = always continue); default: triggerRules. */
  setRules(rules: TestRules): void;
  /** Forgets recorded sessions and restores triggerRules. */
  reset(): void;
  /** All messages of all sessions, oldest first. */
  messages(): MessageRecord[];
}

/** Macros requested on top of Postfix's defaults (a requested list replaces the MTA's list for that stage). */
export const TEST_APP_MACROS = {
  connect: ['j', '{daemon_name}', '{daemon_addr}', 'v', '_', '{client_addr}', '{client_name}'],
  envfrom: ['i', '{mail_addr}', '{auth_authen}'],
  envrcpt: ['i', '{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}'],
  eom: ['i'],
} as const;

export function createTestMilterApp(initialRules: TestRules = triggerRules): TestMilterApp {
  let rules = initialRules;
  const sessions: SessionRecord[] = [];
  const byId = new Map<string, SessionRecord>();

  // Only connect (or a first command when CONNECT is skipped) opens a record: a late close of a
  // connection from before reset() must not reappear as a new session.
  const session = (ctx: MilterContext): SessionRecord => {
    let s = byId.get(ctx.id);
    if (!s) {
      s = { id: ctx.id, messages: [], unknown: [], closed: false };
      byId.set(ctx.id, s);
      sessions.push(s);
    }
    return s;
  };
  // The current transaction, kept in the library's per-message state so ABORT/EOM reset it.
  const current = (ctx: MilterContext): MessageRecord | undefined => ctx.state['message'] as MessageRecord | undefined;
  const decide = (m: MessageRecord | undefined, stage: string, v: TestVerdict | undefined): Verdict => {
    if (m && v && v.kind !== 'continue') m.verdict = { stage, verdict: v };
    return toVerdict(v);
  };

  const app: MilterApplication = {
    actions: ['ADDHDRS'],
    macros: {
      connect: TEST_APP_MACROS.connect,
      envfrom: TEST_APP_MACROS.envfrom,
      envrcpt: TEST_APP_MACROS.envrcpt,
      eom: TEST_APP_MACROS.eom,
    },
    connect(ctx, info) {
      const s = session(ctx);
      s.connect = { ...info, macros: ctx.macros() };
      return decide(undefined, 'connect', rules.connect?.(s.connect));
    },
    helo(ctx, name) {
      const s = session(ctx);
      s.helo = name;
      return decide(undefined, 'helo', rules.helo?.(name, s));
    },
    envfrom(ctx, sender, args) {
      const s = session(ctx);
      const m: MessageRecord = {
        seq: s.messages.length + 1,
        sender,
        mailArgs: args,
        mailMacros: ctx.macros(),
        rcpts: [],
        dataSeen: false,
        headers: [],
        eohSeen: false,
        bodyBytes: 0,
        added: [],
        aborted: false,
      };
      s.messages.push(m);
      ctx.state['message'] = m;
      return decide(m, 'envfrom', rules.envfrom?.(m, s));
    },
    envrcpt(ctx, address, args) {
      const s = session(ctx);
      const m = current(ctx);
      const r: RcptRecord = { address, args, macros: ctx.macros() };
      m?.rcpts.push(r);
      // A refused recipient does not decide the message: record nothing on it.
      return toVerdict(m ? rules.envrcpt?.(r, m, s) : undefined);
    },
    data(ctx) {
      const m = current(ctx);
      if (m) m.dataSeen = true;
      return Verdict.continue();
    },
    header(ctx, name, value) {
      current(ctx)?.headers.push([name, value]);
      return Verdict.continue();
    },
    eoh(ctx) {
      const m = current(ctx);
      if (m) m.eohSeen = true;
      return Verdict.continue();
    },
    body(ctx, chunk) {
      const m = current(ctx);
      if (m) m.bodyBytes += chunk.length;
      return Verdict.continue();
    },
    eom(ctx) {
      const s = session(ctx);
      const m = current(ctx);
      if (!m) return Verdict.continue();
      m.eomMacros = ctx.macros();
      const v = rules.eom?.(m, s);
      if (!v || v.kind === 'continue' || v.kind === 'accept') {
        for (const [name, value] of (rules.addHeaders ?? addTestHeaders)(m, s)) {
          ctx.addHeader(name, value);
          m.added.push([name, value]);
        }
      }
      return decide(m, 'eom', v);
    },
    unknown(ctx, line) {
      session(ctx).unknown.push(line);
      return Verdict.continue();
    },
    abort(ctx) {
      const m = current(ctx);
      if (m && !m.eomMacros) m.aborted = true;
    },
    close(ctx) {
      const s = byId.get(ctx.id);
      if (s) s.closed = true;
    },
  };

  return {
    app,
    sessions,
    setRules(r) {
      rules = r;
    },
    reset() {
      sessions.length = 0;
      byId.clear();
      rules = initialRules;
    },
    messages() {
      return sessions.flatMap((s) => s.messages);
    },
  };
}
