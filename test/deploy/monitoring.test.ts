// The metrics as Prometheus sees them: a live scrape of the real daemon (`node dist/src/cli/main.js`,
// a child process with Knot for DNS and slapd for LDAP, after real milter traffic) passes
// `promtool check metrics`; every metric the Grafana dashboard and the alert rules use is one
// the daemon exports; `promtool check rules` accepts the rules.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { freePort } from '../support/postfix.js';
import { POLICY_DNS, POLICY_LDAP, PostfixLikeSession } from '../support/scenario-runner.js';
import { slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';
import { repoPath, MAIN_JS } from '../support/paths.js';
import { waitFor } from '../support/wait.js';

const DASHBOARD = repoPath('deploy/monitoring/grafana-dashboard.json');
const RULES = repoPath('deploy/monitoring/prometheus-alerts.yaml');
const RULE_TESTS = repoPath('deploy/monitoring/prometheus-alerts.test.yaml');
const START_TIMEOUT_MS = 15_000;

const promtoolMissing = (): string | false => {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return r.error || r.status !== 0 ? 'promtool is not installed (Debian package prometheus; scripts/test.sh installs it)' : false;
};

/** PromQL expressions of the dashboard's panels and of the alert rules. */
function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}
function ruleExprs(): string[] {
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: { expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

/** Metric names in PromQL: identifiers followed by a selector, a range or an operator, not functions or labels. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutGroupings = withoutStrings.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const withoutSelectors = withoutGroupings.replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  const names = [...withoutSelectors.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)].map((m) => m[1]!);
  const keywords = new Set(['and', 'or', 'unless', 'offset', 'bool', 'le', 'inf', 'nan']);
  return names.filter((n) => !keywords.has(n.toLowerCase()) && !/^\d/.test(n));
}

/** Families in an exposition: name -> type, from the # TYPE lines. */
function families(exposition: string): Map<string, string> {
  return new Map([...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** True when `name` is a series the exposition carries (a histogram's _bucket/_sum/_count included). */
function exported(types: Map<string, string>, name: string): boolean {
  if (types.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m !== null && (types.get(m[1]!) === 'histogram' || types.get(m[1]!) === 'summary');
}

/** Series Prometheus itself adds to every target. */
const SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);

test('the metric-name extraction finds names and nothing else', () => {
  assert.deepEqual(
    metricNames('histogram_quantile(0.99, sum by (le, instance) (rate(a_bucket{job=~"$job", x="y z"}[$__rate_interval]))) / on(instance) b_total > 3 * c'),
    ['a_bucket', 'b_total', 'c'],
  );
});

test('the dashboard is importable and shows what a postmaster watches', () => {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    uid: string;
    title: string;
    templating: { list: { name: string; type: string }[] };
    panels: { id: number; type: string; title: string; gridPos: Record<string, number>; targets?: { refId: string; expr: string; datasource: { uid: string } }[] }[];
  };
  assert.ok(dash.uid && dash.title);
  assert.ok(dash.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'));
  const ids = dash.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
  for (const p of dash.panels) {
    assert.ok(p.gridPos.w > 0 && p.gridPos.h > 0, p.title);
    for (const t of p.targets ?? []) {
      assert.ok(t.refId && t.expr, p.title);
      assert.equal(t.datasource.uid, '${datasource}');
    }
  }
  const titles = dash.panels.map((p) => p.title).join('\n');
  for (const t of ['Actions', 'SPF results', 'Violation rate by ownership', 'Fail-open rate by reason', 'Decision latency', 'DNS lookup latency', 'LDAP lookup latency', 'DNS errors', 'LDAP errors', 'Milter connections', 'DMARC judgements', 'DMARC violation ratio']) {
    assert.match(titles, new RegExp(`^${t}$`, 'm'));
  }
});

test('promtool check rules accepts the alert rules', { skip: promtoolMissing() }, () => {
  const r = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const alerts = (parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string }[] }[] }).groups.flatMap((g) => g.rules.map((x) => x.alert));
  for (const name of [
    'SosMilterDown',
    'SosMilterFailOpenRateHigh',
    'SosMilterLdapDisconnected',
    'SosMilterDnsTimeouts',
    'SosMilterDnsServerDown',
    'SosMilterFdExhausted',
    'SosMilterRejectRatioJump',
  ]) {
    assert.ok(alerts.includes(name), name);
  }
});

test('promtool test rules: a dead DNS server fires DnsServerDown, not DnsTimeouts through its probes; fd exhaustion fires at once', { skip: promtoolMissing() }, () => {
  const r = spawnSync('promtool', ['test', 'rules', RULE_TESTS], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS/);
  // Every alert about the new failure modes has a case.
  const cases = readFileSync(RULE_TESTS, 'utf8');
  for (const name of ['SosMilterDnsTimeouts', 'SosMilterDnsServerDown', 'SosMilterFdExhausted']) assert.match(cases, new RegExp(`alertname: ${name}$`, 'm'));
});

describe('a live scrape of the daemon', { skip: knotSkipReason() ?? slapdUnavailableReason() ?? false }, () => {
  let knot: KnotInstance | undefined;
  let slapd: SlapdInstance | undefined;
  let child: ChildProcess | undefined;
  let exposition = '';

  before(async () => {
    knot = await startKnot(POLICY_DNS);
    slapd = await startSlapd(POLICY_LDAP);
    const [milterPort, metricsPort] = [await freePort(), await freePort()];
    child = spawn(process.execPath, [MAIN_JS], {
      env: {
        PATH: process.env.PATH,
        MILTER_SOCKET: `inet:${milterPort}@127.0.0.1`,
        METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
        // Test mode: LDAP is asked only there, so own and foreign violations are both counted.
        MILTER_MODE: 'test',
        SPF_REGEX: String.raw`.*include:_spf\.esp\.sos\.test(\s|$)`,
        DNS_SERVERS: `127.0.0.1:${knot.port}`,
        DNS_TIMEOUT_MS: '400',
        LDAP_ENABLED: '1',
        LDAP_SERVER_URI: slapd.url,
        LDAP_SEARCH_BASE: `ou=domains,${slapd.suffix}`,
        LDAP_QUERY_FILTER: '(dc=%d)',
        LDAP_TIMEOUT_MS: '1000',
        LOG_LEVEL: 'warn',
        // The DMARC step too, so that its counter carries samples (the From: field is the sender).
        DMARC_CHECK: 'on',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const base = `http://127.0.0.1:${metricsPort}`;
    await waitFor(
      async () => {
        const ready = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
        assert.ok(ready || child!.exitCode === null, `daemon exited before it was ready (exit ${child!.exitCode})`);
        return ready;
      },
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 100, what: 'the daemon to be ready (/readyz)' },
    );
    // Real traffic, so that labelled counters and histograms carry samples: a pass, a foreign
    // and an own violation, a fail-open (no record), a DNS timeout.
    const session = await PostfixLikeSession.open({ port: milterPort, host: '127.0.0.1' });
    for (const from of ['<u@pass.sos.test>', '<u@fail.sos.test>', '<u@own-fail.sos.test>', '<u@norecord.sos.test>', '<u@x.hang.sos.test>']) {
      await session.message({ from, expect: { reply: 'continue' } });
    }
    session.close();
    exposition = await (await fetch(`${base}/metrics`)).text();
    // The audit's metrics come from its own run (textfile or Pushgateway), rendered by the same code.
    const { metricsText } = await import('../../src/cli/audit-history.js');
    exposition += metricsText({
      byStatus: { pass: 1, fail: 1, unjudged: 0 },
      seconds: 1,
      finishedAt: new Date(),
      complete: true,
      pending: 0,
      result: {
        commit: { runId: 1, changes: { newlyBroken: [], fixed: [], stillBroken: [], unchanged: [], unknown: [] }, queued: 0, outbox: [] },
        delivery: { sent: { webhook: 0, email: 0 }, failed: [], deferred: 0, channelDown: {} },
        refusedContacts: [],
        byDomain: new Map(),
        wouldSend: [],
        writeSeconds: 0,
      },
    });
  });
  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await knot?.close();
    await slapd?.close();
  });

  test('promtool check metrics passes', { skip: promtoolMissing() }, () => {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal((r.stdout + r.stderr).trim(), '', 'no lint findings');
  });

  test('the scrape follows the conventions and carries the traffic', () => {
    const types = families(exposition);
    for (const [name, type] of types) {
      if (name.endsWith('_total')) assert.equal(type, 'counter', `${name} ends in _total but is a ${type}`);
      if (type === 'counter') assert.match(name, /_total$/, `counter ${name}`);
    }
    assert.ok(types.has('process_resident_memory_bytes') && types.has('nodejs_heap_size_used_bytes'), "Node's default metrics under their standard names");
    assert.ok(![...types.keys()].some((n) => /^sos_milter_(process|nodejs)_/.test(n)));
    assert.match(exposition, new RegExp(`^sos_milter_build_info\\{version="[^"]+",node="${process.versions.node}"\\} 1$`, 'm'));
    assert.match(exposition, /^sos_milter_spf_violations_total\{check="regex",ownership="foreign"\} 1$/m);
    assert.match(exposition, /^sos_milter_spf_violations_total\{check="regex",ownership="own"\} 1$/m);
    assert.match(exposition, /^sos_milter_fail_open_total\{reason="none"\} 1$/m);
    assert.match(exposition, /^sos_milter_ldap_connected 1$/m);
    assert.match(exposition, /^sos_milter_dns_errors_total\{kind="timeout"\} [1-9]/m);
    assert.match(exposition, /^sos_milter_decision_duration_seconds_count\{check="regex"\} 5$/m);
    assert.match(exposition, /^sos_milter_ldap_lookup_duration_seconds_count\{outcome="ldap"\} [1-9]/m);
    assert.match(exposition, /^sos_milter_dns_lookup_duration_seconds_count\{outcome="ok"\} [1-9]/m);
    assert.match(exposition, /^sos_milter_milter_connections_total [1-9]/m);
    assert.match(exposition, /^sos_milter_dmarc_judgements_total\{judgement="(violation|pass|not-applicable|unknown)"\} [1-9]/m);
  });

  test('every metric the dashboard and the alert rules use is exported', () => {
    const types = families(exposition);
    const exprs = [...dashboardExprs(), ...ruleExprs()];
    assert.ok(exprs.length >= 20);
    const used = new Set(exprs.flatMap(metricNames));
    const unknown = [...used].filter((n) => !SYNTHETIC.has(n) && !exported(types, n));
    assert.deepEqual(unknown, []);
    for (const family of ['sos_milter_messages_total', 'sos_milter_spf_violations_total', 'sos_milter_fail_open_total', 'sos_milter_ldap_connected', 'sos_milter_milter_connections_open', 'sos_milter_dmarc_judgements_total']) {
      assert.ok(used.has(family), `the dashboard or the rules use ${family}`);
    }
  });
});
