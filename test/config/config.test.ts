import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, DEFAULTS, loadConfig, REDACTED } from '../../src/config/index.js';

const LDAP = {
  LDAP_ENABLED: 'yes',
  LDAP_SERVER_URI: 'ldap://127.0.0.1:3890',
  LDAP_SEARCH_BASE: 'ou=domains,dc=example,dc=test',
  LDAP_QUERY_FILTER: '(dc=%d)',
};

function rejects(env: NodeJS.ProcessEnv, variable: string, detail?: RegExp): void {
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.variable, variable, err.message);
      assert.ok(err.message.startsWith(`${variable}: `), err.message);
      if (detail) assert.match(err.message, detail);
      return true;
    },
    JSON.stringify(env),
  );
}

test('defaults with an empty environment', () => {
  const c = loadConfig({});
  assert.equal(c.logLevel, 'info');
  assert.equal(c.logFormat, 'text');
  assert.equal(c.milterMode, 'test');
  assert.equal(c.milterName, 'sos-milter');
  assert.equal(c.milterSocket, '/socket/sos-milter');
  assert.deepEqual(c.milterSocketSpec, { kind: 'unix', path: '/socket/sos-milter' });
  assert.equal(c.milterSocketMode, 0o666);
  assert.equal(c.milterRejectMessage, 'Security policy violation!');
  assert.equal(c.milterTmpfailMessage, 'Service temporarily not available! Please try again later.');
  assert.equal(c.spfRegex.source, '.*');
  assert.deepEqual(c.ignoredNextHops, []);
  assert.equal(c.ldap, undefined);
  assert.equal(c.spfCheck, 'regex');
  assert.deepEqual(c.outboundIps, []);
  assert.deepEqual(c.spfViolationResults, ['fail']);
  assert.equal(c.dnsServers, undefined);
  assert.equal(c.dnsTimeoutMs, 2000);
  assert.equal(c.metricsListen, undefined);
  assert.equal(c.healthListen, undefined);
  assert.equal(c.milterMaxConnections, DEFAULTS.milterMaxConnections);
  assert.equal(c.milterIdleTimeoutMs, 310_000);
  assert.equal(c.shutdownTimeoutMs, 10_000);
});

test('empty strings mean unset', () => {
  const env: NodeJS.ProcessEnv = {};
  for (const v of ['LOG_LEVEL', 'LOG_FORMAT', 'MILTER_MODE', 'MILTER_NAME', 'MILTER_SOCKET', 'MILTER_SOCKET_MODE', 'SPF_REGEX', 'IGNORED_NEXT_HOPS', 'LDAP_ENABLED', 'SPF_CHECK', 'OUTBOUND_IPS', 'SPF_VIOLATION_RESULTS', 'DNS_SERVERS', 'DNS_TIMEOUT_MS', 'METRICS_LISTEN', 'HEALTH_LISTEN', 'MILTER_MAX_CONNECTIONS']) env[v] = '';
  const c = loadConfig(env);
  assert.equal(c.milterSocket, '/socket/sos-milter');
  assert.equal(c.ldap, undefined);
  assert.equal(c.spfRegex.source, '.*');
});

test('LOG_LEVEL accepts info, warning/warn, error, debug in any case', () => {
  assert.equal(loadConfig({ LOG_LEVEL: 'DEBUG' }).logLevel, 'debug');
  assert.equal(loadConfig({ LOG_LEVEL: 'Warning' }).logLevel, 'warn');
  assert.equal(loadConfig({ LOG_LEVEL: 'warn' }).logLevel, 'warn');
  assert.equal(loadConfig({ LOG_LEVEL: 'error' }).logLevel, 'error');
  assert.equal(loadConfig({ LOG_LEVEL: 'Info' }).logLevel, 'info');
  rejects({ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL', /debug, info, warning, warn, error/);
});

test('LOG_FORMAT is text or json', () => {
  assert.equal(loadConfig({ LOG_FORMAT: 'json' }).logFormat, 'json');
  assert.equal(loadConfig({ LOG_FORMAT: 'text' }).logFormat, 'text');
  rejects({ LOG_FORMAT: 'yaml' }, 'LOG_FORMAT', /text, json/);
});

test('MILTER_MODE is test or reject in any case', () => {
  assert.equal(loadConfig({ MILTER_MODE: 'REJECT' }).milterMode, 'reject');
  assert.equal(loadConfig({ MILTER_MODE: 'Test' }).milterMode, 'test');
  rejects({ MILTER_MODE: 'enforce' }, 'MILTER_MODE');
});

test('MILTER_NAME sets the default socket and refuses white space, slashes and control characters', () => {
  const c = loadConfig({ MILTER_NAME: 'spf-guard' });
  assert.equal(c.milterName, 'spf-guard');
  assert.equal(c.milterSocket, '/socket/spf-guard');
  for (const bad of ['a b', 'a/b', 'a\tb', 'x\u0001']) rejects({ MILTER_NAME: bad }, 'MILTER_NAME');
});

test('MILTER_SOCKET accepts the libmilter forms', () => {
  assert.deepEqual(loadConfig({ MILTER_SOCKET: '/run/m.sock' }).milterSocketSpec, { kind: 'unix', path: '/run/m.sock' });
  assert.deepEqual(loadConfig({ MILTER_SOCKET: 'unix:/run/m.sock' }).milterSocketSpec, { kind: 'unix', path: '/run/m.sock' });
  assert.deepEqual(loadConfig({ MILTER_SOCKET: 'local:/run/m.sock' }).milterSocketSpec, { kind: 'unix', path: '/run/m.sock' });
  assert.deepEqual(loadConfig({ MILTER_SOCKET: 'inet:8020' }).milterSocketSpec, { kind: 'inet', family: 4, port: 8020 });
  assert.deepEqual(loadConfig({ MILTER_SOCKET: 'inet:8020@127.0.0.1' }).milterSocketSpec, { kind: 'inet', family: 4, port: 8020, host: '127.0.0.1' });
  assert.deepEqual(loadConfig({ MILTER_SOCKET: 'inet:8020@localhost' }).milterSocketSpec, { kind: 'inet', family: 4, port: 8020, host: 'localhost' });
  assert.deepEqual(loadConfig({ MILTER_SOCKET: 'inet6:8020' }).milterSocketSpec, { kind: 'inet', family: 6, port: 8020 });
  assert.deepEqual(loadConfig({ MILTER_SOCKET: 'inet6:8020@::1' }).milterSocketSpec, { kind: 'inet', family: 6, port: 8020, host: '::1' });
  assert.deepEqual(loadConfig({ MILTER_SOCKET: 'inet6:8020@[::1]' }).milterSocketSpec, { kind: 'inet', family: 6, port: 8020, host: '::1' });
  assert.equal(loadConfig({ MILTER_SOCKET: ' inet:8020 ' }).milterSocket, 'inet:8020');
  for (const bad of ['tcp:8020', 'inet:', 'inet:70000', 'inet:80x', 'inet:8020@::1', 'inet6:8020@1.2.3.4', 'unix:', 'unix:relative', 'relative/path', 'inet:8020@bad host']) {
    rejects({ MILTER_SOCKET: bad }, 'MILTER_SOCKET', /inet6:PORT\[@HOST\]/);
  }
});

test('MILTER_SOCKET_MODE is an octal mode', () => {
  assert.equal(loadConfig({ MILTER_SOCKET_MODE: '0660' }).milterSocketMode, 0o660);
  assert.equal(loadConfig({ MILTER_SOCKET_MODE: '600' }).milterSocketMode, 0o600);
  for (const bad of ['0669', 'rw-rw-rw-', '01777777', '-1']) rejects({ MILTER_SOCKET_MODE: bad }, 'MILTER_SOCKET_MODE', /octal/);
});

test('reply texts must be one printable ASCII line', () => {
  const c = loadConfig({ MILTER_REJECT_MESSAGE: 'Rejected by policy', MILTER_TMPFAIL_MESSAGE: 'Later please' });
  assert.equal(c.milterRejectMessage, 'Rejected by policy');
  assert.equal(c.milterTmpfailMessage, 'Later please');
  rejects({ MILTER_REJECT_MESSAGE: 'a\r\n550 b' }, 'MILTER_REJECT_MESSAGE');
  rejects({ MILTER_TMPFAIL_MESSAGE: 'x\u0000' }, 'MILTER_TMPFAIL_MESSAGE');
  rejects({ MILTER_REJECT_MESSAGE: 'x'.repeat(901) }, 'MILTER_REJECT_MESSAGE', /900/);
});

test('SPF_REGEX is compiled and errors name it', () => {
  assert.equal(loadConfig({ SPF_REGEX: '^.*include:secure-mailgate\\.com.*$' }).spfRegex.matches('v=spf1 include:secure-mailgate.com -all'), true);
  rejects({ SPF_REGEX: '(' }, 'SPF_REGEX');
  rejects({ SPF_REGEX: '(x)\\1' }, 'SPF_REGEX', /backreference/);
});

test('IGNORED_NEXT_HOPS is trimmed, lower-cased, without empty entries', () => {
  assert.deepEqual(loadConfig({ IGNORED_NEXT_HOPS: ' [Relay.Example]:25, another.RELAY,, and.so.on:125 ,' }).ignoredNextHops, [
    '[relay.example]:25',
    'another.relay',
    'and.so.on:125',
  ]);
  rejects({ IGNORED_NEXT_HOPS: 'a b' }, 'IGNORED_NEXT_HOPS');
});

test('LDAP: enabled by any non-empty value, with mandatory URI, base and filter', () => {
  const c = loadConfig({ ...LDAP, LDAP_SERVER_URI: 'ldap://a.example ldaps://b.example:1636, ldap://[::1]:389' });
  assert.ok(c.ldap);
  assert.deepEqual(
    c.ldap.uris.map((u) => u.url),
    ['ldap://a.example', 'ldaps://b.example:1636', 'ldap://[::1]:389'],
  );
  assert.equal(c.ldap.bindDn, undefined);
  assert.equal(c.ldap.bindPw, undefined);
  assert.equal(c.ldap.searchBase, 'ou=domains,dc=example,dc=test');
  assert.equal(c.ldap.queryFilter, '(dc=%d)');
  assert.equal(c.ldap.cacheTtlSeconds, 300);
  assert.equal(c.ldap.negativeCacheTtlSeconds, 60);
  assert.equal(c.ldap.timeoutMs, 2000);
  assert.ok(loadConfig({ ...LDAP, LDAP_ENABLED: 'false' }).ldap, 'any non-empty value enables LDAP, as in the original');
  assert.equal(loadConfig({ LDAP_SERVER_URI: 'nonsense' }).ldap, undefined, 'LDAP settings are ignored while LDAP is off');
  rejects({ ...LDAP, LDAP_SERVER_URI: '' }, 'LDAP_SERVER_URI', /required/);
  rejects({ ...LDAP, LDAP_SEARCH_BASE: undefined }, 'LDAP_SEARCH_BASE', /required/);
  rejects({ ...LDAP, LDAP_QUERY_FILTER: undefined }, 'LDAP_QUERY_FILTER', /required/);
});

test('LDAP_SERVER_URI accepts only ldap:// and ldaps:// with host and port', () => {
  for (const bad of ['http://x.example', 'x.example', 'ldap://', 'ldap://x.example/dc=x', 'ldap://u:p@x.example', 'ldap://x.example:0', 'ldap://x.example:99999']) {
    rejects({ ...LDAP, LDAP_SERVER_URI: bad }, 'LDAP_SERVER_URI');
  }
});

test('LDAP_BINDDN/LDAP_BINDPW bind with a DN; the password is kept verbatim', () => {
  const c = loadConfig({ ...LDAP, LDAP_BINDDN: 'cn=milter,dc=example,dc=test', LDAP_BINDPW: ' s3cret ' });
  assert.equal(c.ldap?.bindDn, 'cn=milter,dc=example,dc=test');
  assert.equal(c.ldap?.bindPw, ' s3cret ');
  rejects({ ...LDAP, LDAP_BINDDN: 'cn=milter,dc=example,dc=test' }, 'LDAP_BINDPW');
});

test('LDAP_QUERY_FILTER must contain %d and be parenthesised', () => {
  assert.equal(loadConfig({ ...LDAP, LDAP_QUERY_FILTER: '(&(objectClass=dNSDomain)(dc=%d))' }).ldap?.queryFilter, '(&(objectClass=dNSDomain)(dc=%d))');
  rejects({ ...LDAP, LDAP_QUERY_FILTER: '(dc=example.org)' }, 'LDAP_QUERY_FILTER', /%d/);
  for (const bad of ['dc=%d', '(dc=%d', '(dc=%d))', '(a=1)(dc=%d)']) rejects({ ...LDAP, LDAP_QUERY_FILTER: bad }, 'LDAP_QUERY_FILTER', /parenthesised/);
});

test('LDAP_DKIM_ATTRIBUTE: an attribute description, off by default, refused without LDAP', () => {
  assert.equal(loadConfig(LDAP).ldap?.dkimAttribute, undefined);
  assert.equal(loadConfig({ ...LDAP, LDAP_DKIM_ATTRIBUTE: ' associatedDomain ' }).ldap?.dkimAttribute, 'associatedDomain');
  assert.equal(loadConfig({ ...LDAP, LDAP_DKIM_ATTRIBUTE: '0.9.2342.19200300.100.1.37' }).ldap?.dkimAttribute, '0.9.2342.19200300.100.1.37');
  for (const bad of ['associated Domain', '(dc=*)', '1abc', 'dc,mail', 'a;b\u0000']) rejects({ ...LDAP, LDAP_DKIM_ATTRIBUTE: bad }, 'LDAP_DKIM_ATTRIBUTE', /not an LDAP attribute name/);
  rejects({ LDAP_DKIM_ATTRIBUTE: 'associatedDomain' }, 'LDAP_DKIM_ATTRIBUTE', /LDAP_ENABLED is not/);
  assert.equal(loadConfig({ LDAP_DKIM_ATTRIBUTE: '' }).ldap, undefined, 'empty is unset');
});

test('LDAP cache TTLs and timeout are plain decimal integers in range', () => {
  const c = loadConfig({ ...LDAP, LDAP_CACHE_TTL: '0', LDAP_NEGATIVE_CACHE_TTL: '15', LDAP_TIMEOUT_MS: '500' });
  assert.equal(c.ldap?.cacheTtlSeconds, 0);
  assert.equal(c.ldap?.negativeCacheTtlSeconds, 15);
  assert.equal(c.ldap?.timeoutMs, 500);
  for (const bad of ['1e3', '12abc', '-1', '1.5', '0x10', '+5', ' ']) {
    if (bad.trim() === '') continue;
    rejects({ ...LDAP, LDAP_CACHE_TTL: bad }, 'LDAP_CACHE_TTL', /decimal integer/);
    rejects({ ...LDAP, LDAP_NEGATIVE_CACHE_TTL: bad }, 'LDAP_NEGATIVE_CACHE_TTL', /decimal integer/);
    rejects({ ...LDAP, LDAP_TIMEOUT_MS: bad }, 'LDAP_TIMEOUT_MS', /decimal integer/);
  }
  rejects({ ...LDAP, LDAP_TIMEOUT_MS: '0' }, 'LDAP_TIMEOUT_MS', /from 1/);
});

test('SPF_CHECK is regex or evaluate; evaluate requires OUTBOUND_IPS', () => {
  const c = loadConfig({ SPF_CHECK: 'evaluate', OUTBOUND_IPS: ' 192.0.2.10, 2001:db8::25 ,' });
  assert.equal(c.spfCheck, 'evaluate');
  assert.deepEqual(c.outboundIps, ['192.0.2.10', '2001:db8::25']);
  rejects({ SPF_CHECK: 'evaluate' }, 'OUTBOUND_IPS', /required/);
  rejects({ SPF_CHECK: 'both' }, 'SPF_CHECK');
  rejects({ OUTBOUND_IPS: '192.0.2.300' }, 'OUTBOUND_IPS');
  rejects({ SPF_CHECK: 'evaluate', OUTBOUND_IPS: 'relay.example' }, 'OUTBOUND_IPS');
});

test('SPF_VIOLATION_RESULTS is a subset of fail, softfail, permerror that includes fail', () => {
  assert.deepEqual(loadConfig({ SPF_VIOLATION_RESULTS: 'softfail, FAIL' }).spfViolationResults, ['fail', 'softfail']);
  assert.deepEqual(loadConfig({ SPF_VIOLATION_RESULTS: 'fail,softfail,permerror' }).spfViolationResults, ['fail', 'softfail', 'permerror']);
  rejects({ SPF_VIOLATION_RESULTS: 'fail,neutral' }, 'SPF_VIOLATION_RESULTS', /neutral/);
  rejects({ SPF_VIOLATION_RESULTS: 'temperror' }, 'SPF_VIOLATION_RESULTS');
  rejects({ SPF_VIOLATION_RESULTS: 'softfail' }, 'SPF_VIOLATION_RESULTS', /must include fail/);
});

test('DNS_SERVERS takes IP or IP:port entries, IPv6 in brackets', () => {
  assert.deepEqual(loadConfig({ DNS_SERVERS: '127.0.0.1, [::1]:5353, 192.0.2.1:53' }).dnsServers, [
    { host: '127.0.0.1', port: 53 },
    { host: '::1', port: 5353 },
    { host: '192.0.2.1', port: 53 },
  ]);
  for (const bad of ['dns.example', '127.0.0.1:0', '[::1', '1.2.3.4:x']) rejects({ DNS_SERVERS: bad }, 'DNS_SERVERS');
});

test('timeouts and limits are positive integers', () => {
  const c = loadConfig({ DNS_TIMEOUT_MS: '750', MILTER_MAX_CONNECTIONS: '50', MILTER_IDLE_TIMEOUT_MS: '60000', SHUTDOWN_TIMEOUT_MS: '3000' });
  assert.equal(c.dnsTimeoutMs, 750);
  assert.equal(c.milterMaxConnections, 50);
  assert.equal(c.milterIdleTimeoutMs, 60000);
  assert.equal(c.shutdownTimeoutMs, 3000);
  for (const v of ['DNS_TIMEOUT_MS', 'MILTER_MAX_CONNECTIONS', 'MILTER_IDLE_TIMEOUT_MS', 'SHUTDOWN_TIMEOUT_MS']) {
    rejects({ [v]: '0' }, v);
    rejects({ [v]: '1e3' }, v);
    rejects({ [v]: '-5' }, v);
  }
  rejects({ MILTER_IDLE_TIMEOUT_MS: '2147483648' }, 'MILTER_IDLE_TIMEOUT_MS', /out of range/);
});

test('METRICS_LISTEN and HEALTH_LISTEN are host:port', () => {
  assert.deepEqual(loadConfig({ METRICS_LISTEN: '127.0.0.1:9100' }).metricsListen, { host: '127.0.0.1', port: 9100 });
  assert.deepEqual(loadConfig({ METRICS_LISTEN: '[::1]:9100' }).metricsListen, { host: '::1', port: 9100 });
  assert.deepEqual(loadConfig({ HEALTH_LISTEN: ':8080' }).healthListen, { host: undefined, port: 8080 });
  assert.deepEqual(loadConfig({ HEALTH_LISTEN: 'localhost:8080' }).healthListen, { host: 'localhost', port: 8080 });
  for (const bad of ['9100', '::1:9100', '127.0.0.1:', 'host:99999', '[1.2.3.4]:80', 'bad host:80']) {
    rejects({ METRICS_LISTEN: bad }, 'METRICS_LISTEN');
    rejects({ HEALTH_LISTEN: bad }, 'HEALTH_LISTEN');
  }
});

test('toLog() never shows the LDAP password', () => {
  const secret = 'Very$ecret-Pw';
  const c = loadConfig({ ...LDAP, LDAP_BINDDN: 'cn=milter,dc=example,dc=test', LDAP_BINDPW: secret, SPF_REGEX: '.*include:x' });
  const view = c.toLog();
  const text = JSON.stringify(view);
  assert.ok(!text.includes(secret));
  assert.ok(text.includes(REDACTED));
  assert.ok(text.includes('cn=milter,dc=example,dc=test'));
  assert.ok(text.includes('.*include:x'));
  assert.equal((view.ldap as { bindPw: string }).bindPw, REDACTED);
});
