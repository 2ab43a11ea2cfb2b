// LDAP_DKIM_ATTRIBUTE in the DMARC judgement, from plain values: the From: domain's entry names
// signing domains (source LDAP); a failed lookup is unknown (fail open) unless something aligns anyway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachingResolver } from '../../src/dns/index.js';
import {
  assessDmarcReport,
  dkimDomainsFor,
  dkimInput,
  dmarcFromDomain,
  ldapDkimFor,
  ldapDkimNow,
  ldapDkimOf,
  type DmarcInput,
  type OwnDomainAnswer,
  type OwnDomainPort,
} from '../../src/policy/index.js';
import { ZoneResolver } from '../support/spf/zone-resolver.js';

const zone = {
  '_dmarc.customer.example': [{ TXT: 'v=DMARC1; p=reject' }],
  '_dmarc.strict.example': [{ TXT: 'v=DMARC1; p=reject; adkim=s' }],
  '_dmarc.relaxed.example': [{ TXT: 'v=DMARC1; p=none' }],
};
const one = (domain: string) => ({ kind: 'one' as const, domain, address: `a@${domain}`, mailboxes: 1 });
const spf = { kind: 'pass' as const, domain: 'bounce.esp.example', check: 'regex' as const, ownership: 'not-asked' as const, result: 'restrictive' as const, reason: 'r' };

function input(from: string, ldap?: { domains: string[]; error?: string }, signing: string[] = []): DmarcInput {
  return { from: one(from), mailFromDomain: 'bounce.esp.example', spf, ...dkimInput(signing, one(from), [], ldap) };
}

async function judge(i: DmarcInput) {
  const cache = new CachingResolver(new ZoneResolver(zone), { purgeIntervalMs: 60_000 });
  try {
    return await assessDmarcReport(i, cache);
  } finally {
    cache.close();
  }
}

test('dkimDomainsFor: configured, then LDAP, then present; each domain once, with the first source', () => {
  assert.deepEqual(dkimDomainsFor(['esp.example'], one('c.example'), ['c.example', 'esp.example'], ['c.example', 'esp.example']), [
    { domain: 'esp.example', source: 'DKIM_SIGNING_DOMAINS' },
    { domain: 'c.example', source: 'LDAP' },
  ]);
});

test('ldapDkimOf: own entries give their domains, foreign none, a failure its error', () => {
  assert.deepEqual(ldapDkimOf({ own: true, source: 'ldap', dkimDomains: ['a.example'] }), { domains: ['a.example'] });
  assert.deepEqual(ldapDkimOf({ own: true, source: 'cache' }), { domains: [] });
  assert.deepEqual(ldapDkimOf({ own: false, source: 'ldap', dkimDomains: ['ignored.example'] }), { domains: [] });
  assert.deepEqual(ldapDkimOf({ own: false, source: 'error', error: 'LdapUnavailableError: down' }), { domains: [], error: 'LdapUnavailableError: down' });
});

test('ldapDkimNow answers from the cache only; ldapDkimFor asks', async () => {
  const asked: string[] = [];
  const port: OwnDomainPort = {
    isOwnDomain: (d) => {
      asked.push(d);
      return Promise.resolve<OwnDomainAnswer>({ own: true, source: 'ldap', dkimDomains: ['esp.example'] });
    },
    isOwnDomainNow: (d) => (d === 'warm.example' ? { own: true, source: 'cache', dkimDomains: ['w.example'] } : undefined),
  };
  assert.deepEqual(ldapDkimNow(port, 'warm.example'), { domains: ['w.example'] });
  assert.equal(ldapDkimNow(port, 'cold.example'), undefined);
  assert.deepEqual(await ldapDkimFor(port, 'cold.example'), { domains: ['esp.example'] });
  assert.deepEqual(asked, ['cold.example']);
  assert.equal(dmarcFromDomain(one('B\u00fccher.example')), 'xn--bcher-kva.example');
  assert.equal(dmarcFromDomain({ kind: 'missing' }), undefined);
});

test('an LDAP signing domain that aligns (relaxed) passes, and the reason names LDAP', async () => {
  const r = await judge(input('customer.example', { domains: ['mail.customer.example'] }));
  assert.equal(r.judgement.kind, 'pass');
  assert.equal(r.dkimSource, 'LDAP');
  assert.equal(r.dkimDomain, 'mail.customer.example');
  assert.match(r.judgement.reason, /DKIM signature for mail\.customer\.example \(LDAP\) aligns \(adkim=r\)/);
});

test('adkim=s: only the From: domain itself aligns', async () => {
  assert.equal((await judge(input('strict.example', { domains: ['mail.strict.example'] }))).judgement.kind, 'violation');
  const exact = await judge(input('strict.example', { domains: ['esp.example', 'strict.example'] }));
  assert.equal(exact.judgement.kind, 'pass');
  assert.equal(exact.dkimDomain, 'strict.example');
});

test('no LDAP signing domain: the violation as before; a failed lookup makes it unknown (fail open)', async () => {
  const none = await judge(input('customer.example', { domains: [] }));
  assert.equal(none.judgement.kind, 'violation');
  assert.match(none.judgement.reason, /no DKIM signing domain known$/);
  const failed = await judge(input('customer.example', { domains: [], error: 'LdapUnavailableError: no LDAP server reachable' }));
  assert.equal(failed.judgement.kind, 'unknown');
  assert.equal(failed.judgement.reason, 'DKIM signing domains from LDAP not known: LdapUnavailableError: no LDAP server reachable');
  assert.equal(failed.dkimLdapError, 'LdapUnavailableError: no LDAP server reachable');
  // Something else aligns: the failure changes nothing.
  const configured = await judge(input('customer.example', { domains: [], error: 'down' }, ['customer.example']));
  assert.equal(configured.judgement.kind, 'pass');
  assert.equal(configured.dkimSource, 'DKIM_SIGNING_DOMAINS');
  // No enforcing policy: nothing to fail open about.
  assert.equal((await judge(input('relaxed.example', { domains: [], error: 'down' }))).judgement.kind, 'pass');
});
