// `sos-milter health [--ready] [--timeout MS]`: asks the running daemon's /healthz (or /readyz)
// where this environment says it serves them, for container HEALTHCHECKs and scripts: no curl,
// no wget, no port written twice.
import { request } from 'node:http';
import { connect, isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { ConfigError, ENV_VARIABLES, loadConfig, type Config, type HostPort } from '../config/index.js';
import { formatSocketSpec } from '../milter/socket-spec.js';
import { ExitCode } from '../app/exit-codes.js';
import { errorMessage } from '../log/index.js';

export const HEALTH_USAGE = 'usage: sos-milter health [--ready] [--timeout MS]';

const DEFAULT_TIMEOUT_MS = 2000;
const MAX_TIMEOUT_MS = 60_000;

/** What this command reads; the rest of the environment is only checked, as the daemon checks it. */
const HEALTH_VARIABLES = ['HEALTH_LISTEN', 'METRICS_LISTEN', 'MILTER_NAME', 'MILTER_SOCKET'];

function environmentSection(): string {
  const rows = ENV_VARIABLES.filter((v) => HEALTH_VARIABLES.includes(v.name));
  const width = Math.max(...rows.map((v) => v.name.length));
  return ['Environment (default in brackets):', ...rows.map((v) => `  ${v.name.padEnd(width)}  ${v.summary} [${v.default}]`)].join('\n');
}

const HELP = `${HEALTH_USAGE}

Asks the daemon configured by this environment whether it is healthy, and prints one line.
It asks GET /healthz (with --ready: /readyz) on HEALTH_LISTEN, or on METRICS_LISTEN when
HEALTH_LISTEN is unset; an address without a host (:9100), 0.0.0.0 or :: is asked on
127.0.0.1. With neither set there is no HTTP endpoint: it connects to MILTER_SOCKET instead
(and closes at once, no milter session), which shows the socket accepts, and says so.
The whole environment is checked as the daemon checks it.

  --ready        ask /readyz (the milter socket listens; not while draining) instead of /healthz
  --timeout MS   give up after MS milliseconds (default ${DEFAULT_TIMEOUT_MS}, at most ${MAX_TIMEOUT_MS})
  -h, --help     show this help

Use it as the container's health check (exec form, no shell):
  HEALTHCHECK CMD ["node", "/app/dist/src/cli/main.js", "health"]

${environmentSection()}

Exit status: ${ExitCode.OK} healthy (ready); ${ExitCode.FAILURE} unhealthy, not ready or unreachable;
${ExitCode.USAGE} usage error; ${ExitCode.CONFIG} bad environment.
`;

class UsageError extends Error {}

interface HealthArgs {
  ready: boolean;
  timeoutMs: number;
}

function parse(argv: string[]): HealthArgs | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        ready: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    throw new UsageError(errorMessage(e), { cause: e });
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (values.timeout !== undefined) {
    if (!/^[0-9]+$/.test(values.timeout) || Number(values.timeout) < 1 || Number(values.timeout) > MAX_TIMEOUT_MS) {
      throw new UsageError(`--timeout: ${JSON.stringify(values.timeout)} is not an integer from 1 to ${MAX_TIMEOUT_MS}`);
    }
    timeoutMs = Number(values.timeout);
  }
  return { ready: values.ready === true, timeoutMs };
}

export interface ProbeResult {
  ok: boolean;
  /** One line: what was asked and what came back. */
  message: string;
}

/** The address a client uses to reach a server listening on `host` (unset or a wildcard: loopback). */
function clientHost(host: string | undefined, wildcardFamily: 4 | 6 = 4): string {
  if (host === undefined || host === '0.0.0.0' || host === '::') return wildcardFamily === 6 ? '::1' : '127.0.0.1';
  return host;
}

/** GET http://HOST:PORT/PATH once, no keep-alive; ok on 200. */
export function probeHttp(address: HostPort, path: '/healthz' | '/readyz', timeoutMs: number): Promise<ProbeResult> {
  // Node's ops server without a host listens dual-stack on ::, or on 0.0.0.0: 127.0.0.1 reaches both.
  const host = clientHost(address.host);
  const url = `http://${isIP(host) === 6 ? `[${host}]` : host}:${address.port}${path}`;
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = request({ host, port: address.port, path, method: 'GET', agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 200) body += chunk;
      });
      res.on('end', () => {
        const said = body.trim().split('\n')[0]?.slice(0, 80) ?? '';
        const status = res.statusCode ?? 0;
        done({ ok: status === 200, message: `GET ${url} answered ${status}${said ? ` ${said}` : ''}` });
      });
      res.on('error', (err) => done({ ok: false, message: `GET ${url} failed: ${errorMessage(err)}` }));
    });
    const timer = setTimeout(() => {
      done({ ok: false, message: `GET ${url}: no answer within ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => done({ ok: false, message: `GET ${url} failed: ${errorMessage(err)}` }));
    req.end();
  });
}

/** Connects to the milter socket and closes at once; ok when the connection is accepted. */
export function probeMilterSocket(spec: Config['milterSocketSpec'], timeoutMs: number): Promise<ProbeResult> {
  const where = formatSocketSpec(spec);
  return new Promise((resolve) => {
    const socket = spec.kind === 'unix' ? connect({ path: spec.path }) : connect({ host: clientHost(spec.host, spec.family), port: spec.port });
    let settled = false;
    const done = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, message: `MILTER_SOCKET ${where}: no connection within ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () => done({ ok: true, message: `MILTER_SOCKET ${where} accepts connections` }));
    socket.once('error', (err) => done({ ok: false, message: `MILTER_SOCKET ${where}: ${errorMessage(err)}` }));
  });
}

export interface HealthIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** Runs `sos-milter health`; argv holds the arguments after `health`. Returns the exit status. */
export async function runHealthCommand(argv: string[], env: NodeJS.ProcessEnv, io: HealthIo): Promise<number> {
  let args: HealthArgs | 'help';
  try {
    args = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err.write(`sos-milter health: ${e.message}\n${HEALTH_USAGE}\n`);
    return ExitCode.USAGE;
  }
  if (args === 'help') {
    io.out.write(HELP);
    return ExitCode.OK;
  }
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    io.err.write(`sos-milter health: configuration error: ${e.message}\n`);
    return ExitCode.CONFIG;
  }
  const what = args.ready ? 'ready' : 'healthy';
  let result: ProbeResult;
  if (config.healthListen !== undefined || config.metricsListen !== undefined) {
    const variable = config.healthListen !== undefined ? 'HEALTH_LISTEN' : 'METRICS_LISTEN';
    result = await probeHttp((config.healthListen ?? config.metricsListen)!, args.ready ? '/readyz' : '/healthz', args.timeoutMs);
    result = { ...result, message: `${result.message} (${variable}=${env[variable]?.trim()})` };
  } else {
    result = await probeMilterSocket(config.milterSocketSpec, args.timeoutMs);
    result = { ...result, message: `${result.message} (HEALTH_LISTEN and METRICS_LISTEN unset: no /healthz or /readyz to ask)` };
  }
  if (result.ok) {
    io.out.write(`sos-milter health: ${what}: ${result.message}\n`);
    return ExitCode.OK;
  }
  io.err.write(`sos-milter health: not ${what}: ${result.message}\n`);
  return ExitCode.FAILURE;
}
