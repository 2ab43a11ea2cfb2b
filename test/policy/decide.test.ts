import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideOutcome, newMessageId, violationSentence, type DecisionSettings, type MessageFacts } from '../../src/policy/decide.js';
import { IgnoredNextHops, NEXT_HOPS_KEPT, RecipientHops } from '../../src/policy/next-hops.js';
import type { Assessment, ViolationAssessment } from '../../src/policy/types.js';

const violating: ViolationAssessment = {
  kind: 'violation',
  domain: 'example.com',
  check: 'regex',
  ownership: 'foreign',
  record: 'v=spf1 ip4:192.0.2.0/24 -all',
  result: 'restrictive',
  detail: '-all',
  reason: 'restrictive record (-all) does not match SPF_REGEX',
};

function settings(mode: 'test' | 'reject', ignored: string[] = []): DecisionSettings {
  return { mode, ignoredNextHops: new IgnoredNextHops(ignored), milterName: 'sos-milter', rejectMessage: 'Security policy violation!' };
}

function facts(hops: (string | undefined)[] = ['example.net'], ignored: string[] = [], more: Partial<MessageFacts> = {}): MessageFacts {
  const recipients = new RecipientHops();
  const list = new IgnoredNextHops(ignored);
  for (const hop of hops) recipients.add(hop, list);
  return { queueId: 'Q1', client: '192.0.2.7', recipients, ...more };
}

function decide(assessment: Assessment, mode: 'test' | 'reject', hops?: (string | undefined)[], ignored: string[] = []) {
  return decideOutcome(assessment, facts(hops, ignored), settings(mode, ignored), 'abcd1234');
}

test('reject mode gives the original reject text', () => {
  const outcome = decide(violating, 'reject');
  assert.deepEqual(outcome, {
    action: 'reject',
    rejectText: 'sos-milter: abcd1234 SPF-record (-all) of 5321_from_domain=example.com does not permit us to relay this message! Security policy violation!',
    reason: violating.reason,
  });
});

test('test mode logs foreign violations and tags own domains', () => {
  assert.equal(decide(violating, 'test').action, 'log');
  const own = decide({ ...violating, ownership: 'own' }, 'test');
  assert.deepEqual(own, { action: 'tag', header: { name: 'X-SOS-Milter', value: 'failed SPF-expectation' }, reason: violating.reason });
});

test('every kind of assessment but a violation lets the message pass, whatever the mode', () => {
  const kinds: Assessment[] = [
    { kind: 'pass', domain: 'example.com', check: 'regex', ownership: 'not-asked', result: 'not-restrictive', reason: 'record has no -all' },
    { kind: 'fail-open', domain: 'example.com', check: 'evaluate', ownership: 'foreign', result: 'permerror', reason: 'permerror: two records' },
  ];
  for (const assessment of kinds) {
    for (const mode of ['test', 'reject'] as const) {
      assert.deepEqual(decide(assessment, mode), { action: 'pass', reason: assessment.reason }, `${assessment.kind} ${mode}`);
    }
  }
  assert.deepEqual(decide({ kind: 'not-judged', reason: 'null sender (bounce/DSN): not judged' }, 'reject'), {
    action: 'none',
    reason: 'null sender (bounce/DSN): not judged',
  });
});

test('a judged message without queue id or client address is tempfailed, before anything else', () => {
  const noQueue = decideOutcome(violating, facts(undefined, [], { queueId: undefined }), settings('reject'), 'x');
  assert.deepEqual(noQueue, { action: 'tempfail', reason: 'could not retrieve milter-macro (i): temporary failure', cause: 'missing-fact' });
  const noClient = decideOutcome(violating, facts(undefined, [], { client: undefined }), settings('reject'), 'x');
  assert.equal(noClient.action, 'tempfail');
  assert.match(noClient.reason, /no client address/);
  // Nothing judged, nothing missing: the null sender needs neither.
  const nul = decideOutcome({ kind: 'not-judged', reason: 'n' }, facts(undefined, [], { queueId: undefined }), settings('reject'), 'x');
  assert.equal(nul.action, 'none');
});

test('a policy not looked up for want of a local resource (no file descriptor) is a tempfail in reject mode, a logged pass in test mode', () => {
  const local: Assessment = {
    kind: 'fail-open',
    domain: 'example.com',
    check: 'regex',
    ownership: 'not-asked',
    result: 'temperror',
    reason: 'DNS TXT lookup of example.com failed: LOCAL_RESOURCE',
    localFault: true,
  };
  assert.deepEqual(decide(local, 'reject'), {
    action: 'tempfail',
    reason: 'SPF policy not looked up for want of a local resource: DNS TXT lookup of example.com failed: LOCAL_RESOURCE',
    cause: 'local-fault',
  });
  assert.deepEqual(decide(local, 'test'), { action: 'pass', reason: local.reason });
  // The sender's own DNS failing still fails open in reject mode.
  const remote: Assessment = { ...local, localFault: undefined, reason: 'DNS TXT lookup of example.com failed: TIMEOUT' };
  delete (remote as { localFault?: true }).localFault;
  assert.deepEqual(decide(remote, 'reject'), { action: 'pass', reason: remote.reason });
});

test('ignored next hops pass a violation only when every recipient goes there', () => {
  assert.equal(decide(violating, 'reject', ['relay.example'], ['relay.example']).action, 'pass-ignored-next-hop');
  assert.equal(decide(violating, 'reject', [' RELAY.example '], ['relay.example']).action, 'pass-ignored-next-hop');
  assert.equal(decide(violating, 'reject', ['relay.example', 'x.example'], ['relay.example']).action, 'reject');
  assert.equal(decide(violating, 'reject', ['x.example', 'relay.example'], ['relay.example']).action, 'reject');
  assert.equal(decide(violating, 'reject', ['relay.example', undefined], ['relay.example']).action, 'reject', 'an unknown hop is not ignored');
  assert.equal(decide(violating, 'reject', [], ['relay.example']).action, 'reject', 'no recipient: nothing is ignored');
  assert.equal(decide(violating, 'reject', ['relay.example'], []).action, 'reject');
});

test('recipient bookkeeping is bounded: hops up to a limit, the rest counted; the rule stays exact', () => {
  const ignored = new IgnoredNextHops(Array.from({ length: 100 }, (_, i) => `hop${i}.example`));
  const hops = new RecipientHops();
  for (let i = 0; i < 100_000; i++) hops.add(`hop${i % 100}.example`, ignored);
  assert.equal(hops.count, 100_000);
  assert.equal(hops.everyIgnored(), true);
  assert.equal(hops.kept.length, NEXT_HOPS_KEPT);
  assert.equal(hops.toString(), `${hops.kept.join(',')},... (${100_000 - NEXT_HOPS_KEPT} more)`);
  hops.add('elsewhere.example', ignored);
  assert.equal(hops.everyIgnored(), false, 'one recipient past the kept list still decides');

  // Real mail: one entry per recipient, as the MTA gave it, exactly as before.
  const two = new RecipientHops();
  two.add('[relay.example]:25', new IgnoredNextHops(['[relay.example]:25']));
  two.add('[relay.example]:25', new IgnoredNextHops(['[relay.example]:25']));
  assert.equal(two.toString(), '[relay.example]:25,[relay.example]:25');
});

test('the evaluate sentence names result and address', () => {
  assert.equal(
    violationSentence({ domain: 'd.example', detail: 'fail for 192.0.2.1' }),
    'SPF-record (fail for 192.0.2.1) of 5321_from_domain=d.example does not permit us to relay this message!',
  );
});

test('message ids are 8 characters of [a-z0-9] and differ', () => {
  const ids = new Set(Array.from({ length: 200 }, newMessageId));
  for (const id of ids) assert.match(id, /^[a-z0-9]{8}$/);
  assert.ok(ids.size > 190);
});

test('rewrite mode: a violation gets the SRS address and the header; scope and refusals fall back to reject, saying why', () => {
  const rewriter = {
    forward: (sender: string) =>
      sender.length > 20 ? { ok: false as const, reason: 'local-part-too-long', detail: 'over 64' } : { ok: true as const, address: `SRS0=hash=TT=${sender.split('@')[1]}=${sender.split('@')[0]}@srs.example` },
  };
  const header = { name: 'X-SOS-Milter', value: 'rewritten' };
  const rewriteSettings = (scope: 'foreign' | 'own' | 'both'): DecisionSettings => ({ ...settings('reject'), mode: 'rewrite', rewrite: { rewriter, scope, header } });
  const f = facts(['example.net'], [], { sender: 'a@example.com' });
  assert.deepEqual(decideOutcome(violating, f, rewriteSettings('both'), 'abcd1234'), {
    action: 'rewrite',
    sender: 'a@example.com',
    srsAddress: 'SRS0=hash=TT=example.com=a@srs.example',
    header,
    reason: violating.reason,
  });
  const own = { ...violating, ownership: 'own' as const };
  assert.equal(decideOutcome(own, f, rewriteSettings('both'), 'abcd1234').action, 'rewrite');
  assert.equal(decideOutcome(own, f, rewriteSettings('own'), 'abcd1234').action, 'rewrite');
  const outside = decideOutcome(own, f, rewriteSettings('foreign'), 'abcd1234');
  assert.equal(outside.action, 'reject');
  assert.deepEqual(outside.action === 'reject' && outside.notRewritten, { reason: 'outside-scope', detail: 'own domain outside SRS_REWRITE=foreign' });
  assert.equal(decideOutcome(violating, f, rewriteSettings('own'), 'abcd1234').action, 'reject');
  const long = decideOutcome(violating, facts(['example.net'], [], { sender: 'a-very-long-local@example.com' }), rewriteSettings('both'), 'abcd1234');
  assert.deepEqual(long.action === 'reject' && long.notRewritten, { reason: 'local-part-too-long', detail: 'over 64' });
  // What passes in reject mode passes in rewrite mode: nothing else is rewritten.
  assert.equal(decideOutcome({ kind: 'pass', domain: 'example.com', check: 'regex', ownership: 'not-asked', result: 'not-restrictive', reason: 'r' }, f, rewriteSettings('both'), 'x').action, 'pass');
  assert.equal(decideOutcome(violating, facts(['relay.example'], ['relay.example'], { sender: 'a@example.com' }), { ...rewriteSettings('both'), ignoredNextHops: new IgnoredNextHops(['relay.example']) }, 'x').action, 'pass-ignored-next-hop');
  assert.equal(decideOutcome({ kind: 'not-judged', reason: 'null sender' }, f, rewriteSettings('both'), 'x').action, 'none');
});
