// The Kubernetes manifests under deploy/kubernetes: valid against the Kubernetes schemas
// (kubernetes-models), passing the "restricted" Pod Security Standard, and all named in the
// kustomization (and composed by `kubectl kustomize` where kubectl is installed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { CronJob } from 'kubernetes-models/batch/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { dockerfileUser, podSpecOf, restrictedViolations } from './pod-security.js';
import { repoPath } from '../support/paths.js';

const DIR = repoPath('deploy/kubernetes');
type Obj = Record<string, unknown>;

function loadYaml(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((d) => {
    assert.equal(d.errors.length, 0, `${path}: ${d.errors.join('; ')}`);
    return d.toJS() as Obj;
  });
}

const kustomization = loadYaml(`${DIR}/kustomization.yaml`)[0]!;
const resourceFiles = (kustomization.resources as string[]) ?? [];
const objects = resourceFiles.flatMap((f) => loadYaml(`${DIR}/${f}`).map((o) => ({ file: f, o })));
const IMAGE_USER = dockerfileUser(readFileSync(repoPath('Dockerfile'), 'utf8'));

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'batch/v1/CronJob': CronJob,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
};

const byKind = (kind: string): Obj => {
  const found = objects.find(({ o }) => o.kind === kind);
  assert.ok(found, `no ${kind} in the kustomization`);
  return found.o;
};
const get = (o: unknown, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v as Obj | undefined)?.[k], o);

test('the kustomization names every manifest in deploy/kubernetes, and each exists', () => {
  const yamls = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
  assert.deepEqual([...resourceFiles].sort(), yamls);
});

test('kubectl kustomize composes the directory', (t) => {
  const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return t.skip('kubectl is not installed (the kustomization is checked by the test above)');
  const r = spawnSync('kubectl', ['kustomize', DIR], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const kinds = parseAllDocuments(r.stdout).map((d) => (d.toJS() as Obj).kind).sort();
  assert.deepEqual(kinds, objects.map(({ o }) => o.kind).sort());
});

test('every object is valid against its Kubernetes schema', () => {
  assert.ok(objects.length >= 6);
  for (const { file, o } of objects) {
    const Model = MODELS[`${String(o.apiVersion)}/${String(o.kind)}`];
    assert.ok(Model, `${file}: no schema for ${String(o.apiVersion)} ${String(o.kind)}`);
    assert.doesNotThrow(() => new Model(o as never).validate(), `${file} (${String(o.kind)})`);
  }
});

test('a schema error is caught (the validation is not vacuous)', () => {
  const broken = structuredClone(byKind('Deployment'));
  (get(broken, 'spec.template.spec') as Obj).terminationGracePeriodSeconds = 'thirty';
  assert.throws(() => new Deployment(broken as never).validate());
});

test('the Deployment passes the restricted Pod Security Standard', () => {
  for (const { file, o } of objects) {
    const spec = podSpecOf(o);
    if (spec) assert.deepEqual(restrictedViolations(spec, { imageUser: IMAGE_USER }), [], file);
  }
  assert.match(IMAGE_USER ?? '', /^\d+:\d+$/, 'the image USER is numeric uid:gid');
});

test('the Deployment as it was before issue 10 fails the restricted Pod Security Standard', () => {
  const old = loadYaml(repoPath('test/deploy/data/deployment-before-issue-10.yaml')).find((o) => o.kind === 'Deployment')!;
  const violations = restrictedViolations(podSpecOf(old)!, { imageUser: 'node' }).join('\n');
  assert.match(violations, /non-numeric user "node"/);
  assert.match(violations, /seccompProfile must be RuntimeDefault/);
  assert.match(violations, /capabilities\.drop must contain ALL/);
});

test('probes, resources and shutdown timing fit the daemon', () => {
  const deployment = byKind('Deployment');
  const configMap = byKind('ConfigMap');
  const pod = get(deployment, 'spec.template.spec') as Obj;
  const container = (pod.containers as Obj[])[0]!;
  assert.equal(get(container, 'readinessProbe.httpGet.path'), '/readyz');
  assert.equal(get(container, 'livenessProbe.httpGet.path'), '/healthz');
  assert.ok(get(container, 'lifecycle.preStop'), 'a preStop pause');
  const preStopSeconds = Number((get(container, 'lifecycle.preStop.exec.command') as string[]).at(-1));
  const shutdownMs = Number(get(configMap, 'data.SHUTDOWN_TIMEOUT_MS'));
  assert.ok(Number(pod.terminationGracePeriodSeconds) * 1000 > preStopSeconds * 1000 + shutdownMs, 'grace period above preStop + SHUTDOWN_TIMEOUT_MS');
  // Measured RSS under load is 100-130 MiB: the request must cover it, the limit leave room.
  const mib = (q: unknown): number => Number(/^(\d+)Mi$/.exec(String(q))?.[1]);
  assert.ok(mib(get(container, 'resources.requests.memory')) >= 130);
  assert.ok(mib(get(container, 'resources.limits.memory')) >= 2 * 130);
  assert.equal(get(deployment, 'spec.replicas'), undefined, 'replicas are the HPA\'s');
  assert.equal(get(configMap, 'data.METRICS_LISTEN'), ':9100');
  assert.equal(get(configMap, 'data.MILTER_SOCKET'), 'inet:8020');
  assert.equal(get(configMap, 'data.LDAP_BINDPW'), undefined, 'the password is in the Secret');
});

test('Service, PodDisruptionBudget and HorizontalPodAutoscaler select the Deployment', () => {
  const labels = get(byKind('Deployment'), 'spec.template.metadata.labels') as Record<string, string>;
  const matches = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
  assert.ok(matches(get(byKind('Service'), 'spec.selector') as Record<string, string>));
  assert.ok(matches(get(byKind('PodDisruptionBudget'), 'spec.selector.matchLabels') as Record<string, string>));
  assert.deepEqual((get(byKind('Service'), 'spec.ports') as Obj[]).map((p) => p.port), [8020, 9100, 10003]); // milter, metrics, the srsdecode socketmap (rewrite mode)
  assert.equal(get(byKind('HorizontalPodAutoscaler'), 'spec.scaleTargetRef.name'), get(byKind('Deployment'), 'metadata.name'));
  assert.ok(Number(get(byKind('HorizontalPodAutoscaler'), 'spec.minReplicas')) >= 2, 'two replicas at least, so the PDB allows a drain');
});

test('the audit CronJob: one run at a time, the history on its volume, every variable it is given is one the audit reads', async () => {
  const cron = byKind('CronJob');
  assert.equal(get(cron, 'spec.concurrencyPolicy'), 'Forbid');
  const pod = podSpecOf(cron)!;
  assert.deepEqual(restrictedViolations(pod, { imageUser: IMAGE_USER }), []);
  const container = (pod.containers as Obj[])[0]!;
  const args = container.args as string[];
  const history = args[args.indexOf('--history') + 1]!;
  const mount = (container.volumeMounts as Obj[])[0]!;
  assert.ok(history.startsWith(`${String(mount.mountPath)}/`), 'the history file is on the mounted volume');
  const claim = ((pod.volumes as Obj[])[0]!.persistentVolumeClaim as Obj).claimName;
  assert.ok(objects.some(({ o }) => o.kind === 'PersistentVolumeClaim' && get(o, 'metadata.name') === claim));
  const { ENV_VARIABLES } = await import('../../src/config/index.js');
  const audit = new Set(ENV_VARIABLES.filter((v) => v.readers.includes('audit')).map((v) => v.name));
  const auditConfig = objects.find(({ o }) => o.kind === 'ConfigMap' && get(o, 'metadata.name') === 'sos-milter-audit')!.o;
  const auditSecret = objects.find(({ o }) => o.kind === 'Secret' && get(o, 'metadata.name') === 'sos-milter-audit')!.o;
  for (const name of [...Object.keys(auditConfig.data as Obj), ...Object.keys(auditSecret.stringData as Obj)]) assert.ok(audit.has(name), `${name} is read by the audit`);
});
