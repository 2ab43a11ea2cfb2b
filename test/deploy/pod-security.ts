/**
 * The Pod Security Standards' "restricted" profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
 * baseline rules included, as a checker over plain manifests, plus the kubelet's own refusal of
 * runAsNonRoot with a non-numeric image user (CreateContainerConfigError).
 */
type Obj = Record<string, unknown>;

const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);

const ALLOWED_VOLUME_KINDS = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);

export interface PodSecurityContext {
  /** The USER of the container image, when known (e.g. from the Dockerfile). */
  imageUser?: string;
}

/** Violations of the restricted profile in a pod spec (empty when it passes). */
export function restrictedViolations(podSpec: Obj, context: PodSecurityContext = {}): string[] {
  const out: string[] = [];
  const pod = obj(podSpec.securityContext);
  for (const key of ['hostNetwork', 'hostPID', 'hostIPC']) if (podSpec[key] === true) out.push(`${key} must not be true`);
  for (const v of list(podSpec.volumes)) {
    const kinds = Object.keys(v).filter((k) => k !== 'name');
    for (const k of kinds) if (!ALLOWED_VOLUME_KINDS.has(k)) out.push(`volume ${String(v.name)}: type ${k} is not allowed`);
  }
  for (const s of list(pod.sysctls)) if (!SAFE_SYSCTLS.has(String(s.name))) out.push(`sysctl ${String(s.name)} is not allowed`);
  if (obj(pod.windowsOptions).hostProcess === true) out.push('hostProcess must not be true');
  const podSeccomp = obj(pod.seccompProfile).type as string | undefined;
  if (podSeccomp !== undefined && !['RuntimeDefault', 'Localhost'].includes(podSeccomp)) out.push(`pod seccompProfile ${podSeccomp} is not allowed`);

  const containers = [...list(podSpec.initContainers), ...list(podSpec.containers), ...list(podSpec.ephemeralContainers)];
  if (containers.length === 0) out.push('no containers');
  for (const c of containers) {
    const name = `container ${String(c.name)}`;
    const sc = obj(c.securityContext);
    if (sc.privileged === true) out.push(`${name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${name}: allowPrivilegeEscalation must be false`);
    const caps = obj(sc.capabilities);
    const drop = Array.isArray(caps.drop) ? caps.drop.map(String) : [];
    if (!drop.includes('ALL')) out.push(`${name}: capabilities.drop must contain ALL`);
    const add = Array.isArray(caps.add) ? caps.add.map(String) : [];
    for (const a of add) if (a !== 'NET_BIND_SERVICE') out.push(`${name}: capability ${a} must not be added`);
    for (const p of list(c.ports)) if (p.hostPort !== undefined && p.hostPort !== 0) out.push(`${name}: hostPort ${String(p.hostPort)}`);
    if (sc.procMount !== undefined && sc.procMount !== 'Default') out.push(`${name}: procMount must be Default`);
    const seccomp = (obj(sc.seccompProfile).type as string | undefined) ?? podSeccomp;
    if (seccomp === undefined) out.push(`${name}: seccompProfile must be RuntimeDefault or Localhost (pod or container)`);
    else if (!['RuntimeDefault', 'Localhost'].includes(seccomp)) out.push(`${name}: seccompProfile ${seccomp} is not allowed`);
    const runAsNonRoot = (sc.runAsNonRoot ?? pod.runAsNonRoot) as boolean | undefined;
    if (runAsNonRoot !== true) out.push(`${name}: runAsNonRoot must be true (pod or container)`);
    const runAsUser = (sc.runAsUser ?? pod.runAsUser) as number | undefined;
    if (runAsUser === 0) out.push(`${name}: runAsUser must not be 0`);
    // The kubelet: "container has runAsNonRoot and image has non-numeric user (...), cannot verify user is non-root".
    if (runAsNonRoot === true && runAsUser === undefined && context.imageUser !== undefined && !/^\d+(:\d+)?$/.test(context.imageUser)) {
      out.push(`${name}: runAsNonRoot with the image's non-numeric user "${context.imageUser}" and no numeric runAsUser: the kubelet refuses to start it`);
    }
    if (runAsUser === undefined && context.imageUser !== undefined && /^0(:|$)/.test(context.imageUser)) out.push(`${name}: the image runs as root`);
  }
  return out;
}

/** The pod spec of a workload object (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob...). */
export function podSpecOf(o: Obj): Obj | undefined {
  if (o.kind === 'Pod') return obj(o.spec);
  const spec = obj(o.spec);
  if (o.kind === 'CronJob') return obj(obj(obj(obj(spec.jobTemplate).spec).template).spec);
  const template = obj(spec.template);
  return template.spec === undefined ? undefined : obj(template.spec);
}

/** The last USER of a Dockerfile's final stage. */
export function dockerfileUser(text: string): string | undefined {
  const stages = text.split(/^FROM\s/im);
  const last = stages[stages.length - 1] ?? '';
  const users = [...last.matchAll(/^USER\s+(\S+)/gim)].map((m) => m[1]!);
  return users[users.length - 1];
}
