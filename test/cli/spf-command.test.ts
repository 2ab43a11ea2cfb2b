// `sos-milter spf` against a real Knot serving test/data/dns/cli/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { captureOutput } from '../support/capture.js';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { runSpfCommand, SPF_EXIT_STATUS } from '../../src/cli/spf-command.js';

const zonesDir = fileURLToPath(new URL('../../../test/data/dns/cli/', import.meta.url));

function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; text: string }> {
  return captureOutput((out) => runSpfCommand(argv, env, out));
}

describe('usage errors', () => {
  const env = { DNS_SERVERS: '127.0.0.1:9' };
  for (const [argv, message] of [
    [[], /expected IP and SENDER, got 0/],
    [['192.0.2.1'], /expected IP and SENDER, got 1/],
    [['not-an-ip', 'a@b.test'], /not an IP address/],
    [['192.0.2.1', 'a@b.test', '--bogus'], /Unknown option/],
    [['192.0.2.1', '<>'], /--helo NAME is required/],
  ] as [string[], RegExp][]) {
    test(`${JSON.stringify(argv)} exits 64 with the usage line`, async () => {
      const { code, text } = await run(argv, env);
      assert.equal(code, 64);
      assert.match(text, message);
      assert.match(text, /^usage: sos-milter spf IP SENDER/m);
    });
  }

  test('a bad DNS_SERVERS is a configuration error (78)', async () => {
    const { code, text } = await run(['192.0.2.1', 'a@b.test'], { DNS_SERVERS: 'dns.example' });
    assert.equal(code, 78);
    assert.match(text, /DNS_SERVERS: entry "dns.example"/);
  });

  test('--help prints the help and exits 0', async () => {
    const { code, text } = await run(['--help'], env);
    assert.equal(code, 0);
    assert.match(text, /--json/);
  });
});

describe('sos-milter spf against Knot', { skip: knotSkipReason() }, () => {
  let knot: KnotInstance;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    knot = await startKnot({ zonesDir, timeoutNames: ['hang.cli.test'], blackholeTimeoutMs: 2000 });
    env = { DNS_SERVERS: `${knot.host}:${knot.port}`, DNS_TIMEOUT_MS: '3000' };
  });
  after(async () => {
    await knot?.close();
  });

  test('pass through an include: the tree shows the include nested with its matched term', async () => {
    const { code, text } = await run(['192.0.2.10', 'alice@cli.test', '--helo', 'mta.example.test'], env);
    assert.equal(code, 0);
    const lines = text.split('\n');
    assert.equal(lines[0], 'SPF pass for ip=192.0.2.10 sender=alice@cli.test helo=mta.example.test (domain cli.test)');
    assert.ok(lines.includes('matched: include:_spf.cli.test (record of cli.test)'), text);
    assert.ok(lines.includes('lookups: 1/10 DNS-querying terms, 0/2 void lookups'), text);
    const root = lines.findIndex((l) => l.startsWith('  cli.test  "v=spf1 include:_spf.cli.test a:mail.cli.test -all exp=why.cli.test"'));
    assert.ok(root > 0, text);
    assert.match(lines[root], /=> pass {2}\[matched include:_spf\.cli\.test\] <== decisive$/);
    assert.equal(
      lines[root + 1],
      '  └─ include:_spf.cli.test -> _spf.cli.test  "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all"  => pass  [matched ip4:192.0.2.0/24]',
    );
    assert.match(text, /^ {2}TXT {2}cli\.test {2}answer, 2 record\(s\)$/m);
    assert.match(text, /^ {2}TXT {2}_spf\.cli\.test {2}answer, 1 record\(s\)$/m);
  });

  test('fail at -all with the exp= explanation, after an a: lookup that did not match', async () => {
    const { code, text } = await run(['203.0.113.7', 'bob@cli.test'], env);
    assert.equal(code, 1);
    assert.match(text, /^SPF fail for ip=203\.0\.113\.7 sender=bob@cli\.test helo=cli\.test/);
    assert.match(text, /^matched: -all \(record of cli\.test\)$/m);
    assert.match(text, /^explanation: 203\.0\.113\.7 is not a relay of cli\.test \(exp\)$/m);
    assert.match(text, /\[matched -all\] <== decisive$/m);
    assert.match(text, /└─ include:_spf\.cli\.test -> _spf\.cli\.test .*=> softfail/);
    assert.match(text, /^ {2}A {4}mail\.cli\.test {2}answer, 1 record\(s\)$/m);
  });

  test('--json prints result, reason and the full trace', async () => {
    const { code, text } = await run(['2001:db8::1', 'carol@cli.test', '--json'], env);
    assert.equal(code, 0);
    const json = JSON.parse(text);
    assert.equal(json.result, 'pass');
    assert.equal(typeof json.reason, 'string');
    assert.equal(json.trace.ip, '2001:db8::1');
    assert.deepEqual(json.trace.matched, { term: 'include:_spf.cli.test', domain: 'cli.test' });
    assert.equal(json.trace.root.children[0].matched, 'ip6:2001:db8::/32');
    assert.equal(json.trace.root.domain, 'cli.test');
    assert.equal(json.trace.root.children[0].domain, '_spf.cli.test');
    assert.equal(json.trace.root.children[0].via, 'include');
    assert.equal(json.trace.dnsTerms, 1);
    assert.ok(json.trace.queries.some((q: { name: string; type: string }) => q.name === '_spf.cli.test' && q.type === 'TXT'));
  });

  test('no SPF record is "none"; a nonexistent domain too; both exit 2', async () => {
    const none = await run(['192.0.2.1', 'x@nospf.cli.test', '--json'], env);
    assert.equal(none.code, 2);
    assert.equal(JSON.parse(none.text).result, 'none');
    const missing = await run(['192.0.2.1', 'x@missing.cli.test'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.text, /^SPF none /);
  });

  test('a DNS timeout below a redirect is temperror, exit 3', async () => {
    const { code, text } = await run(['192.0.2.1', 'x@slow.cli.test', '--json'], { ...env, DNS_TIMEOUT_MS: '400' });
    assert.equal(code, 3);
    const json = JSON.parse(text);
    assert.equal(json.result, 'temperror');
    assert.equal(json.trace.root.children[0].via, 'redirect');
    assert.ok(json.trace.queries.some((q: { outcome: string; error?: string }) => q.outcome === 'error' && q.error === 'TIMEOUT'), text);
  });

  // The documented mapping: 0 pass, 1 fail/softfail, 2 neutral/none, 3 temperror/permerror.
  for (const [result, status] of [
    ['pass', 0],
    ['fail', 1],
    ['softfail', 1],
    ['neutral', 2],
    ['none', 2],
    ['permerror', 3],
  ] as const) {
    test(`exit status ${status} for ${result}, text and --json alike`, async () => {
      const text = await run(['192.0.2.1', `x@${result}.exitcodes.test`], env);
      assert.equal(text.code, status, text.text);
      assert.match(text.text, new RegExp(`^SPF ${result} `));
      const json = await run(['192.0.2.1', `x@${result}.exitcodes.test`, '--json'], env);
      assert.equal(json.code, status);
      assert.equal(JSON.parse(json.text).result, result);
    });
  }
});

test('every SPF result has a documented exit status in the help', async () => {
  const { text } = await run(['--help'], {});
  for (const [result, status] of Object.entries(SPF_EXIT_STATUS)) assert.match(text, new RegExp(`${status} [^;]*\\b${result}\\b`), result);
});
