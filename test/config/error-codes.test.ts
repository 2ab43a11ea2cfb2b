import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, type ConfigErrorCode } from '../../src/config/index.js';

const LDAP = {
  LDAP_ENABLED: 'yes',
  LDAP_SERVER_URI: 'ldap://127.0.0.1:3890',
  LDAP_SEARCH_BASE: 'ou=domains,dc=example,dc=test',
  LDAP_QUERY_FILTER: '(dc=%d)',
};

function codeOf(env: NodeJS.ProcessEnv): { code: ConfigErrorCode; variable: string } {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return { code: err.code, variable: err.variable };
  }
  assert.fail(`expected a ConfigError for ${JSON.stringify(env)}`);
}

test('a ConfigError says by its code whether a value is invalid, missing or names an unreadable file', () => {
  assert.deepEqual(codeOf({ LOG_LEVEL: 'loud' }), { code: 'INVALID', variable: 'LOG_LEVEL' });
  assert.deepEqual(codeOf({ DNS_SERVERS: 'bogus' }), { code: 'INVALID', variable: 'DNS_SERVERS' });
  assert.deepEqual(codeOf({ SPF_CHECK: 'evaluate' }), { code: 'MISSING', variable: 'OUTBOUND_IPS' });
  assert.deepEqual(codeOf({ ...LDAP, LDAP_SERVER_URI: '' }), { code: 'MISSING', variable: 'LDAP_SERVER_URI' });
  assert.deepEqual(codeOf({ ...LDAP, LDAP_TLS_CA_FILE: '/nonexistent/ca.pem' }), { code: 'UNREADABLE', variable: 'LDAP_TLS_CA_FILE' });
});
