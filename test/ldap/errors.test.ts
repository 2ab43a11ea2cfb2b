import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LdapClosedError,
  LdapConnectError,
  LdapError,
  LdapSearchError,
  LdapTimeoutError,
  LdapTlsError,
  LdapUnavailableError,
} from '../../src/ldap/index.js';

test('every LdapError carries a code; timeouts of any origin say so by their code', () => {
  const cause = new Error('SearchRequest: Operation timed out');
  const cases: [LdapError, string, boolean][] = [
    [new LdapConnectError('no LDAP server reachable'), 'CONNECT', false],
    [new LdapConnectError('no LDAP server reachable', { timedOut: true }), 'CONNECT_TIMEOUT', true],
    [new LdapUnavailableError('next attempt in 500 ms (last error: Connection timeout)'), 'UNAVAILABLE', false],
    [new LdapTimeoutError('no answer within 50 ms'), 'TIMEOUT', true],
    [new LdapSearchError('search failed: Insufficient Access'), 'SEARCH', false],
    [new LdapSearchError('search failed', { cause, timedOut: true }), 'SEARCH_TIMEOUT', true],
    [new LdapClosedError('directory closed'), 'CLOSED', false],
    [new LdapTlsError('StartTLS failed'), 'TLS', false],
  ];
  for (const [err, code, timedOut] of cases) {
    assert.ok(err instanceof LdapError);
    assert.equal(err.code, code, err.name);
    assert.equal(err.timedOut, timedOut, err.name);
    assert.equal(err.name, err.constructor.name);
  }
  assert.equal(cases[5]![0].cause, cause);
});
