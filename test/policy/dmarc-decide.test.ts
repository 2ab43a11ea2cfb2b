/** The DMARC judgement's decision and the DKIM domains a message counts as signed for (src/policy/dmarc.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideDmarc, dkimDomainsFor, type DmarcDecisionSettings, type DmarcJudgement } from '../../src/policy/dmarc.js';
import { IgnoredNextHops, RecipientHops } from '../../src/policy/next-hops.js';

const violation: DmarcJudgement = {
  kind: 'violation',
  domain: 'customer.example',
  policy: 'reject',
  recordDomain: 'customer.example',
  reason: 'DMARC p=reject at customer.example: MAIL FROM domain not aligned (aspf=r); no DKIM signing domain known',
};

function recipients(hops: string[], ignored: string[] = []): { recipients: RecipientHops } {
  const r = new RecipientHops();
  const list = new IgnoredNextHops(ignored);
  for (const hop of hops) r.add(hop, list);
  return { recipients: r };
}

const settings = (mode: 'test' | 'reject'): DmarcDecisionSettings => ({ mode, milterName: 'sos-milter', rejectMessage: 'Align SPF or DKIM.' });

test('a violation is refused in reject mode with the DMARC sentence and DMARC_REJECT_MESSAGE', () => {
  assert.deepEqual(decideDmarc(violation, recipients(['dest.example']), settings('reject'), 'id1'), {
    action: 'reject',
    rejectText: 'sos-milter: id1 DMARC policy (reject) of 5322_from_domain=customer.example is not met: neither SPF nor DKIM will align! Align SPF or DKIM.',
    reason: violation.reason,
  });
});

test('a violation is tagged in test mode, whatever the ownership', () => {
  const outcome = decideDmarc(violation, recipients(['dest.example']), settings('test'), 'id1');
  assert.deepEqual(outcome, { action: 'tag', header: { name: 'X-SOS-Milter', value: 'failed DMARC-expectation' }, reason: violation.reason });
});

test('every next hop ignored: the violation passes, as for SPF', () => {
  assert.equal(decideDmarc(violation, recipients(['relay.internal'], ['relay.internal']), settings('reject'), 'id1').action, 'pass-ignored-next-hop');
});

test('pass and unknown pass; not-applicable is none', () => {
  assert.equal(decideDmarc({ kind: 'pass', domain: 'a.example', how: 'spf', reason: 'r' }, recipients(['x']), settings('reject'), 'i').action, 'pass');
  assert.equal(decideDmarc({ kind: 'unknown', domain: 'a.example', reason: 'r' }, recipients(['x']), settings('reject'), 'i').action, 'pass');
  assert.equal(decideDmarc({ kind: 'not-applicable', reason: 'no From: field' }, recipients(['x']), settings('reject'), 'i').action, 'none');
});

test('dkimDomainsFor: * is the From: domain itself, listed domains follow, then the d= values present', () => {
  assert.deepEqual(dkimDomainsFor(['*', 'esp.example'], { kind: 'one', domain: 'customer.example', address: 'a@customer.example', mailboxes: 1 }, ['old.example']), [
    { domain: 'customer.example', source: 'DKIM_SIGNING_DOMAINS' },
    { domain: 'esp.example', source: 'DKIM_SIGNING_DOMAINS' },
    { domain: 'old.example', source: 'DKIM-Signature' },
  ]);
  assert.deepEqual(dkimDomainsFor(['*'], { kind: 'missing' }), []);
});
