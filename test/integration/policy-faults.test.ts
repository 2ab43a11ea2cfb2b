// Faults under load: slapd stopped in the middle of a run of messages, then Knot as well,
// then both started again. Two daemons run side by side against the same servers:
//  - regex check, test mode, LDAP on: own domains get the header only while LDAP answers;
//  - evaluate check, reject mode, LDAP on: rejects only while DNS answers.
// Every end of message must be answered within a generous bound derived from the configured
// timeouts, the milter fails open while a server is down, and verdicts are right again once
// the servers are back (polled, bounded: the DNS error TTL and the LDAP reconnect backoff).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';
import {
  assertExpectation,
  POLICY_DNS,
  POLICY_LDAP,
  PostfixLikeSession,
  scenarioEnv,
  startScenarioDaemon,
  type Expectation,
  type MessageResult,
  type ScenarioDaemon,
} from '../support/scenario-runner.js';
import { waitFor } from '../support/wait.js';

const DNS_TIMEOUT_MS = 400;
const LDAP_TIMEOUT_MS = 500;
/** Far above the worst case the daemon allows itself (a few DNS timeouts plus one LDAP timeout). */
const ANSWER_BOUND_MS = 4 * DNS_TIMEOUT_MS + LDAP_TIMEOUT_MS + 5000;
/** LDAP reconnect backoff (doubling, capped at 30 s) and the 5 s DNS error TTL fit well inside. */
const RECOVERY_BOUND_MS = 60_000;
const REGEX = '.*include:_spf\\.esp\\.sos\\.test(\\s|$)';
const skip = knotSkipReason() ?? slapdUnavailableReason() ?? undefined;

interface Played {
  result: MessageResult;
  elapsedMs: number;
  log: string[];
}

/** One long-lived milter connection per daemon, messages played one after another. */
class Runner {
  private session: PostfixLikeSession | undefined;
  readonly played: Played[] = [];
  constructor(readonly sd: ScenarioDaemon) {}

  async play(from: string, rcptHost = 'x.example'): Promise<Played> {
    this.session ??= await PostfixLikeSession.open(this.sd.target, { client: '192.0.2.10' });
    const mark = this.sd.logs.mark;
    const started = performance.now();
    const result = await this.session.message({ from, rcpts: [{ to: '<r@x.example>', rcpt_host: rcptHost }], expect: { reply: 'continue' } });
    const played = { result, elapsedMs: performance.now() - started, log: this.sd.logs.since(mark) };
    this.played.push(played);
    return played;
  }

  close(): void {
    this.session?.quit();
    this.session = undefined;
  }
}

let serial = 0;
/** A sender domain never asked before: its record (*.inj.sos.test, -all) is not in any cache. */
const fresh = (): string => `<user@m${++serial}-${process.pid}.inj.sos.test>`;

function check(p: Played, expect: Expectation, what: string): void {
  assert.ok(p.elapsedMs < ANSWER_BOUND_MS, `${what}: answered after ${Math.round(p.elapsedMs)} ms (bound ${ANSWER_BOUND_MS} ms)`);
  assertExpectation(p.result, expect, p.log);
}

/** Plays until `ok` holds for a message (each one still bounded); fails after RECOVERY_BOUND_MS. */
async function pollUntil(runner: Runner, from: () => string, ok: (p: Played) => boolean, what: string): Promise<Played> {
  return waitFor(
    async () => {
      const p = await runner.play(from());
      assert.ok(p.elapsedMs < ANSWER_BOUND_MS, `${what}: answered after ${Math.round(p.elapsedMs)} ms`);
      return p;
    },
    { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 250, what: `${what}: recovery`, until: ok, describe: (p) => `last log:\n${p.log.join('')}` },
  );
}

const reply = (p: Played): string => (p.result.final.type === 'replyCode' ? p.result.final.text.slice(0, 9) : p.result.final.type);
const tagged = (p: Played): boolean => p.result.modifications.some((m) => m.type === 'addHeader' && m.name === 'X-SOS-Milter');

describe('policy under server faults', { skip, timeout: 240_000 }, () => {
  let knot: KnotInstance | undefined;
  let slapd: SlapdInstance | undefined;
  let tagDaemon: ScenarioDaemon | undefined;
  let rejectDaemon: ScenarioDaemon | undefined;
  let tag: Runner;
  let rej: Runner;

  before(async () => {
    knot = await startKnot(POLICY_DNS);
    slapd = await startSlapd(POLICY_LDAP);
    const servers = { dnsPort: knot.port, ldapUrl: slapd.url, ldapSearchBase: `ou=domains,${slapd.suffix}` };
    // No LDAP caching: every message asks, so the outage is seen at once.
    const common = {
      LDAP: 'on',
      LDAP_TIMEOUT_MS: String(LDAP_TIMEOUT_MS),
      LDAP_CACHE_TTL: '0',
      LDAP_NEGATIVE_CACHE_TTL: '0',
      SPF_REGEX: REGEX,
    };
    tagDaemon = await startScenarioDaemon({ ...scenarioEnv({ ...common, MILTER_MODE: 'test', SPF_CHECK: 'regex' }, servers), DNS_TIMEOUT_MS: String(DNS_TIMEOUT_MS) });
    rejectDaemon = await startScenarioDaemon({
      ...scenarioEnv({ ...common, MILTER_MODE: 'reject', SPF_CHECK: 'evaluate', OUTBOUND_IPS: '192.0.2.1,2001:db8::1' }, servers),
      DNS_TIMEOUT_MS: String(DNS_TIMEOUT_MS),
    });
    tag = new Runner(tagDaemon);
    rej = new Runner(rejectDaemon);
  });
  after(async () => {
    tag?.close();
    rej?.close();
    await tagDaemon?.stop();
    await rejectDaemon?.stop();
    await knot?.close();
    await slapd?.close();
  });

  test('baseline: own domains tagged, foreign -all logged, violations rejected', async () => {
    check(await tag.play('<a@own.inj.sos.test>'), { reply: 'continue', header: 'present', log: ['(LDAP) has a broken SPF-record!'] }, 'own');
    check(await tag.play(fresh()), { reply: 'continue', header: 'none', log: ['mode=test', 'own=foreign'] }, 'foreign');
    check(await rej.play('<a@own-nostmt.sos.test>'), { reply: '550 5.7.1' }, 'own without include');
    check(await rej.play(fresh()), { reply: '550 5.7.1' }, 'foreign fail');
  });

  test('slapd frozen (connections hang): each own-domain question gives up after LDAP_TIMEOUT_MS', async () => {
    slapd!.pause();
    try {
      for (let i = 0; i < 3; i++) {
        check(await tag.play('<a@own.inj.sos.test>'), { reply: 'continue', header: 'none', log: ['own=unknown', 'ownError=', 'mode=test'] }, 'own, LDAP hanging');
        check(await rej.play('<a@own-nostmt.sos.test>'), { reply: 'continue' }, 'own without include, LDAP hanging');
      }
    } finally {
      slapd!.resume();
    }
    await pollUntil(tag, () => '<a@own.inj.sos.test>', tagged, 'LDAP answers again after the freeze');
  });

  test('slapd stopped in the middle of a run: answers keep coming, LDAP errors mean not own', async () => {
    // Stop while messages are in flight on both daemons.
    const stopping = slapd!.stop();
    const inFlight = await Promise.all([tag.play('<a@own.inj.sos.test>'), rej.play('<a@own-nostmt.sos.test>')]);
    await stopping;
    for (const p of inFlight) assert.ok(p.elapsedMs < ANSWER_BOUND_MS, `answered after ${Math.round(p.elapsedMs)} ms`);
    for (let i = 0; i < 4; i++) {
      check(await tag.play('<a@own.inj.sos.test>'), { reply: 'continue', header: 'none', log: ['own=unknown', 'ownError=', 'mode=test'], no_log: ['(LDAP)'] }, 'own, LDAP down');
      // Not own any more: the own-domain rules do not apply, the record passes for our relays.
      check(await rej.play('<a@own-nostmt.sos.test>'), { reply: 'continue', log: ['own=unknown'] }, 'own without include, LDAP down');
      // DNS still answers: a foreign violation is still rejected.
      check(await rej.play(fresh()), { reply: '550 5.7.1' }, 'foreign fail, LDAP down');
    }
  });

  test('Knot stopped as well: fail open, no rejects from DNS failures', async () => {
    const stopping = knot!.stop();
    const inFlight = await Promise.all([tag.play(fresh()), rej.play(fresh())]);
    await stopping;
    for (const p of inFlight) assert.ok(p.elapsedMs < ANSWER_BOUND_MS, `answered after ${Math.round(p.elapsedMs)} ms`);
    for (let i = 0; i < 4; i++) {
      check(await tag.play(fresh()), { reply: 'continue', header: 'none', log: ['/WARN .*fail open/'], no_log: ['mode=test'] }, 'tag, all down');
      check(await rej.play(fresh()), { reply: 'continue', log: ['/WARN .*fail open/'], no_log: ['mode=reject'] }, 'reject, all down');
    }
    check(await rej.play('<a@fail.sos.test>'), { reply: 'continue' }, 'never asked before: fail open');
  });

  test('both back: verdicts are right again', async () => {
    await knot!.start();
    await slapd!.start();
    await pollUntil(rej, fresh, (p) => reply(p) === '550 5.7.1', 'DNS recovery (reject daemon)');
    await pollUntil(tag, fresh, (p) => /mode=test/.test(p.log.join('')), 'DNS recovery (tag daemon)');
    await pollUntil(tag, () => '<a@own.inj.sos.test>', tagged, 'LDAP recovery (tag daemon)');
    await pollUntil(rej, () => '<a@own-nostmt.sos.test>', (p) => reply(p) === '550 5.7.1', 'LDAP recovery (reject daemon)');
    // Steady again.
    check(await tag.play('<a@own.inj.sos.test>'), { reply: 'continue', header: 'present' }, 'own after recovery');
    check(await rej.play(fresh()), { reply: '550 5.7.1' }, 'foreign fail after recovery');
  });

  test('every message of the run was answered within the bound', (t) => {
    const all = [...tag.played, ...rej.played];
    assert.ok(all.length > 30, `only ${all.length} messages played`);
    const slowest = Math.max(...all.map((p) => p.elapsedMs));
    assert.ok(slowest < ANSWER_BOUND_MS, `slowest answer ${Math.round(slowest)} ms`);
    t.diagnostic(`${all.length} messages, slowest answer ${Math.round(slowest)} ms (bound ${ANSWER_BOUND_MS} ms)`);
  });
});
