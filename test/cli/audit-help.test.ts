/**
 * `--help` of the program and of each command lists every environment variable it reads,
 * with its default; the list comes from one table (src/config/variables.ts), and the
 * configuration loader is checked to read nothing that table lacks. Also the daemon's exit
 * 78 for an unreadable LDAP_TLS_CA_FILE, and the audit's usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ENV_VARIABLES, loadAuditHistoryConfig, loadConfig, type EnvReader } from '../../src/config/index.js';
import { runAuditCommand } from '../../src/cli/audit-command.js';
import { captureOutput } from '../support/capture.js';
import { MAIN_JS } from '../support/paths.js';


function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [MAIN_JS, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8', timeout: 10_000 });
}

const HELP_ARGS: Record<EnvReader, string[]> = { daemon: ['--help'], check: ['check', '--help'], audit: ['audit', '--help'], spf: ['spf', '--help'], srs: ['srs', '--help'] };

for (const [reader, args] of Object.entries(HELP_ARGS) as [EnvReader, string[]][]) {
  test(`\`sos-milter ${args.join(' ')}\` lists every variable it reads, with its default`, () => {
    const r = run(args);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const expected = ENV_VARIABLES.filter((v) => v.readers.includes(reader));
    assert.ok(expected.length > 0);
    for (const v of expected) {
      const line = lines.find((l) => l.trimStart().startsWith(`${v.name} `));
      assert.ok(line, `${v.name} missing from ${args.join(' ')}`);
      assert.ok(line.endsWith(`[${v.default}]`), `${v.name}: default ${v.default} missing in ${JSON.stringify(line)}`);
    }
    // Nothing listed that this command does not read.
    for (const v of ENV_VARIABLES.filter((x) => !x.readers.includes(reader))) {
      assert.ok(!lines.some((l) => l.trimStart().startsWith(`${v.name} `)), `${v.name} listed for ${reader}`);
    }
  });
}

test('the program help names every command', () => {
  const r = run(['--help']);
  for (const command of ['sos-milter spf', 'sos-milter check', 'sos-milter audit', 'sos-milter srs', 'sos-milter health']) assert.ok(r.stdout.includes(command), command);
});

test('defaults in the table are the defaults the configuration applies', () => {
  const config = loadConfig({});
  const byName = new Map(ENV_VARIABLES.map((v) => [v.name, v.default]));
  assert.equal(byName.get('LOG_LEVEL'), config.logLevel);
  assert.equal(byName.get('LOG_FORMAT'), config.logFormat);
  assert.equal(byName.get('MILTER_MODE'), config.milterMode);
  assert.equal(byName.get('MILTER_NAME'), config.milterName);
  assert.equal(byName.get('MILTER_SOCKET_MODE'), `0${config.milterSocketMode.toString(8)}`);
  assert.equal(byName.get('MILTER_REJECT_MESSAGE'), config.milterRejectMessage);
  assert.equal(byName.get('MILTER_TMPFAIL_MESSAGE'), config.milterTmpfailMessage);
  assert.equal(byName.get('MILTER_MAX_CONNECTIONS'), String(config.milterMaxConnections));
  assert.equal(byName.get('MILTER_IDLE_TIMEOUT_MS'), String(config.milterIdleTimeoutMs));
  assert.equal(byName.get('SHUTDOWN_TIMEOUT_MS'), String(config.shutdownTimeoutMs));
  assert.equal(byName.get('SPF_CHECK'), config.spfCheck);
  assert.equal(byName.get('SPF_REGEX'), config.spfRegex.source);
  assert.equal(byName.get('SPF_VIOLATION_RESULTS'), config.spfViolationResults.join(','));
  assert.equal(byName.get('DNS_TIMEOUT_MS'), String(config.dnsTimeoutMs));
  assert.equal(byName.get('DNS_CACHE_MAX_BYTES'), String(config.dnsCacheMaxBytes));
  const ldap = loadConfig({ LDAP_ENABLED: 'yes', LDAP_SERVER_URI: 'ldap://x', LDAP_SEARCH_BASE: 'dc=x', LDAP_QUERY_FILTER: '(dc=%d)' }).ldap!;
  assert.equal(byName.get('LDAP_CACHE_TTL'), String(ldap.cacheTtlSeconds));
  assert.equal(byName.get('LDAP_NEGATIVE_CACHE_TTL'), String(ldap.negativeCacheTtlSeconds));
  assert.equal(byName.get('LDAP_TIMEOUT_MS'), String(ldap.timeoutMs));
  assert.equal(byName.get('LDAP_STARTTLS'), String(ldap.tls.startTls));
  assert.equal(byName.get('LDAP_TLS_VERIFY'), String(ldap.tls.verify));
});

test('the configuration reads no variable the table (and so the help) lacks', () => {
  const read = new Set<string>();
  const env = new Proxy(
    {
      LDAP_ENABLED: 'yes',
      LDAP_SERVER_URI: 'ldap://x',
      LDAP_SEARCH_BASE: 'dc=x',
      LDAP_QUERY_FILTER: '(dc=%d)',
      LDAP_BINDDN: 'cn=x',
      LDAP_BINDPW: 'pw',
      SPF_CHECK: 'evaluate',
      OUTBOUND_IPS: '192.0.2.1',
      // Set so that every AUDIT_* branch is read.
      AUDIT_WEBHOOK_URL: 'https://hooks.test/x',
      AUDIT_WEBHOOK_SECRET: 'sixteen-characters-at-least',
      AUDIT_SMTP_URL: 'smtp://relay.test',
      AUDIT_MAIL_FROM: 'hygiene@esp.test',
      AUDIT_CONTACT_ATTRIBUTE: 'mail',
    } as NodeJS.ProcessEnv,
    {
      get(target, key) {
        if (typeof key === 'string') read.add(key);
        return target[key as string];
      },
    },
  );
  loadConfig(env);
  loadAuditHistoryConfig(env);
  const known = new Set(ENV_VARIABLES.map((v) => v.name));
  assert.deepEqual([...read].filter((name) => !known.has(name)), []);
  // And the table holds nothing the configuration never reads (spf reads DNS_* itself).
  assert.deepEqual([...known].filter((name) => !read.has(name)), []);
});

test('the daemon stops with exit 78 for a missing LDAP_TLS_CA_FILE, naming it', () => {
  const r = run([], { LDAP_ENABLED: 'yes', LDAP_SERVER_URI: 'ldaps://127.0.0.1:1', LDAP_SEARCH_BASE: 'dc=x', LDAP_QUERY_FILTER: '(dc=%d)', LDAP_TLS_CA_FILE: '/nonexistent/ca.pem' });
  assert.equal(r.status, 78, r.stderr);
  assert.match(r.stderr, /LDAP_TLS_CA_FILE: "\/nonexistent\/ca.pem" does not exist/);
});

test('audit usage errors exit 64', async () => {
  for (const argv of [['--changes-only'], ['--dry-run'], ['--history', ''], ['--json', '--csv'], ['--concurrency', '0'], ['--concurrency', 'x'], ['--concurrency', '1000'], ['extra'], ['--bogus']]) {
    const { code, text } = await captureOutput((err) => runAuditCommand(argv, {}, { out: err, err }));
    assert.equal(code, 64, `${argv.join(' ')}: ${text}`);
    assert.match(text, /usage: sos-milter audit/);
  }
});

test('`sos-milter audit` without LDAP exits 2 and says why', () => {
  const r = run(['audit']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /LDAP_ENABLED is not set/);
  assert.equal(r.stdout, '');
});
