/**
 * The daemon: reads the configuration from the environment, builds the parts and serves
 * until SIGTERM/SIGINT. Every part is constructed here and nowhere else.
 */
import { getHeapStatistics } from 'node:v8';
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import { createLogger, errorMessage, flushLogger, type Logger, type LogDestination } from '../log/index.js';
import { formatSocketSpec, MilterServer } from '../milter/index.js';
import type { SosMetrics } from '../ops/metrics.js';
import type { Resolver } from '../dns/index.js';
import { startOpsServer, type OpsServer } from '../ops/http-server.js';
import { ExitCode } from '../app/exit-codes.js';
import { connectionCapForFdLimit, FD_BUDGET, FdExhaustion, readOpenFileLimit } from './fd-limit.js';
import { HEAP_FLAGS, heapLimitWarning, missingHeapFlags } from './heap-sizing.js';
import { assessmentTimeoutMs, createDmarcParts, createPolicyParts } from '../app/policy-parts.js';
import { createSosMilterApp } from './sos-app.js';
import { checkSrsDomain, createSocketmapServer, createSrs, rewriteSettings } from '../app/srs-parts.js';
import type { SocketmapServer } from '../srs/index.js';

export interface Daemon {
  config: Config;
  logger: Logger;
  server: MilterServer;
  /** Stops accepting, lets messages in flight finish up to SHUTDOWN_TIMEOUT_MS, closes everything. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Log destination (stdout when absent); tests capture lines here. */
  logDestination?: LogDestination;
}

export async function startDaemon(env: NodeJS.ProcessEnv, options: StartOptions = {}): Promise<Daemon> {
  const config = loadConfig(env);
  const logger = createLogger({ name: config.milterName, level: config.logLevel, format: config.logFormat, destination: options.logDestination });
  logger.debug({ config: config.toLog() }, 'configuration');

  // prom-client with Node's default metrics costs about 11 MiB of RSS (`npm run bench`): a
  // daemon nobody scrapes does not load it.
  const metrics: SosMetrics | undefined = config.metricsListen && (await import('../ops/metrics.js')).createMetrics({ scrapeMaxAgeMs: config.metricsCacheMs });
  const maxConnections = connectionCapFor(config, logger);
  const fdExhaustion = new FdExhaustion(logger);
  const wrapUpstream = (upstream: Resolver): Resolver => {
    const watched = fdExhaustion.watchDns(upstream);
    return metrics ? metrics.timeDnsLookups(watched) : watched;
  };
  const { stub, resolver, spf, directory, settings, ignoredNextHops } = createPolicyParts(config, logger, { wrapUpstream });
  metrics?.watchDnsCache(() => resolver.stats());
  metrics?.watchDnsUpstream(() => stub.stats);
  if (directory) metrics?.watchLdap(() => directory.stats());

  const srs = config.srs && createSrs(config.srs);
  const app = createSosMilterApp({
    rewrite: srs && config.srs && config.milterMode === 'rewrite' ? rewriteSettings(srs, config.srs) : undefined,
    settings,
    milterName: config.milterName,
    rejectMessage: config.milterRejectMessage,
    tmpfailMessage: config.milterTmpfailMessage,
    ignoredNextHops,
    spf,
    ownDomains: directory && fdExhaustion.watchOwnDomains(metrics ? metrics.timeOwnDomainLookups(directory) : directory),
    logger,
    metrics,
    assessmentTimeoutMs: assessmentTimeoutMs(config),
    dmarc: createDmarcParts(config, resolver),
  });

  const server = new MilterServer(app, {
    socket: config.milterSocketSpec,
    logger,
    socketMode: config.milterSocketMode,
    idleTimeoutMs: config.milterIdleTimeoutMs,
    packetTimeoutMs: config.milterPacketTimeoutMs,
    maxBufferedBytes: config.milterMaxBufferedBytes,
    maxQueuedPackets: config.milterMaxQueuedPackets,
    maxWriteBuffer: config.milterMaxWriteBuffer,
    progressIntervalMs: config.milterProgressIntervalMs,
    maxConnections,
  });
  metrics?.watchMilterServer(() => server.stats());
  metrics?.watchFdExhaustion(() => ({ ...fdExhaustion.counts, accept: server.stats().acceptFdExhausted }));

  let listening = false;
  const opsServers: OpsServer[] = [];
  const endpoints = { metrics, live: () => true, ready: () => listening };
  const opsAddresses = [config.metricsListen, config.healthListen].filter((a) => a !== undefined);
  const seen = new Set<string>();
  for (const address of opsAddresses) {
    const key = `${address.host ?? ''}:${address.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    opsServers.push(await startOpsServer(address.host, address.port, endpoints));
    logger.info({ listen: key }, metrics ? 'metrics and health endpoints listening (/metrics, /healthz, /readyz)' : 'health endpoints listening (/healthz, /readyz; /metrics needs METRICS_LISTEN)');
  }

  let socketmap: SocketmapServer | undefined;
  /** What runs beside the milter server, closed when start-up fails or after the drain (a socketmap that never listened closes at once). */
  const closeParts = async (): Promise<void> => {
    await Promise.all(opsServers.map((s) => s.close()));
    await socketmap?.close();
    await directory?.close();
  };
  const socketmapListen = config.srs?.socketmap.listen;
  if (srs && config.srs && socketmapListen) {
    socketmap = createSocketmapServer(srs, config.srs, logger, metrics);
    try {
      const bound = await socketmap.listen(socketmapListen.host, socketmapListen.port);
      logger.info({ listen: `${bound.address}:${bound.port}` }, `srsdecode socketmap listening on ${bound.address}:${bound.port} (recipient_canonical_maps = socketmap:inet:HOST:${bound.port}:srsdecode)`);
    } catch (err) {
      await closeParts();
      throw new Error(`cannot listen on SRS_SOCKETMAP_LISTEN: ${errorMessage(err)}`, { cause: err });
    }
  }

  try {
    await server.listen();
  } catch (err) {
    await closeParts();
    throw new Error(`cannot listen on MILTER_SOCKET=${config.milterSocket}: ${errorMessage(err)}`, { cause: err });
  }
  listening = true;
  reportHeapSizing(config, logger);
  if (config.srs && config.milterMode === 'rewrite') void checkSrsDomain(config.srs.domain, spf, settings, logger, assessmentTimeoutMs(config));
  logger.info(
    { mode: config.milterMode, check: config.spfCheck, ldap: config.ldap !== undefined },
    `Startup ${config.milterName}@socket: ${formatSocketSpec(config.milterSocketSpec)} in mode: ${config.milterMode}`,
  );

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Unready first: a load balancer or Service stops sending new sessions while open ones drain.
      listening = false;
      logger.info({ deadlineMs: config.shutdownTimeoutMs }, 'shutting down: no new connections; open milter connections are served until the MTA closes them');
      await server.close({ deadlineMs: config.shutdownTimeoutMs });
      // Served through the drain (/readyz says 503 meanwhile), then cut: a client that keeps a
      // connection open, or sends half a request, must not hold the exit.
      await closeParts();
      fdExhaustion.flush();
      logger.info(`Shutdown ${config.milterName}`);
      flushLogger(logger);
    })();
    return stopping;
  };
  return { config, logger, server, stop };
}

/**
 * MILTER_MAX_CONNECTIONS, or less when the open-files limit cannot hold that many connections
 * and still leave descriptors for their DNS lookups, LDAP and the listeners (said in a warning).
 */
function connectionCapFor(config: Config, logger: Logger): number {
  const c = connectionCapForFdLimit(readOpenFileLimit(), config.milterMaxConnections, config.ldap !== undefined);
  if (c.lowered) {
    logger.warn(
      { openFilesLimit: c.limit, maxConnections: config.milterMaxConnections, effectiveMaxConnections: c.cap, needed: c.needed, reserve: c.reserve, perConnection: FD_BUDGET.perConnection },
      `open files limit (RLIMIT_NOFILE, ulimit -n) is ${c.limit}, too low for MILTER_MAX_CONNECTIONS=${config.milterMaxConnections} (needs about ${c.needed}: ` +
        `${FD_BUDGET.perConnection} per connection for its socket and its DNS lookup, ${c.reserve} for the process, listeners, LDAP and headroom): ` +
        `serving at most ${c.cap} milter connections; raise the limit (LimitNOFILE=, docker --ulimit nofile=) or lower MILTER_MAX_CONNECTIONS`,
    );
  }
  return c.cap;
}

/** Says once at start-up when V8's heap is sized in a way that costs memory or risks running out of it. */
function reportHeapSizing(config: Config, logger: Logger): void {
  const missing = missingHeapFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (missing.length > 0) {
    logger.info(
      { missing: missing.join(' '), recommended: HEAP_FLAGS.join(' ') },
      `V8 sizes the heap by the machine's memory (no ${missing.join(', ')}): RSS grows to about 110 MiB under load, more on Node 24; the shipped launchers set NODE_OPTIONS="${HEAP_FLAGS.join(' ')}"`,
    );
  }
  const heapLimitBytes = getHeapStatistics().heap_size_limit;
  const warning = heapLimitWarning(heapLimitBytes, config.dnsCacheMaxBytes);
  if (warning) logger.warn({ heapLimitBytes, dnsCacheMaxBytes: config.dnsCacheMaxBytes }, warning);
}

/** Entry point of `sos-milter` without a subcommand. Resolves with the process exit code. */
export async function runDaemon(env: NodeJS.ProcessEnv): Promise<number> {
  let daemon: Daemon | undefined;
  // Node's default for SIGHUP is to die (exit 129) without a word, leaving the socket file behind.
  // The configuration comes from the environment, read once, and the log goes to stdout: there is
  // nothing to reload or reopen. Installed first, so that a SIGHUP during start-up is ignored too.
  process.on('SIGHUP', (signal: NodeJS.Signals) => {
    const text = 'SIGHUP ignored: the configuration comes from the environment and cannot be reloaded; restart the daemon to change it';
    if (daemon) daemon.logger.info({ signal }, text);
    else process.stderr.write(`sos-milter: ${text}\n`);
  });
  try {
    daemon = await startDaemon(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sos-milter: configuration error: ${err.message}\n`);
      return ExitCode.CONFIG;
    }
    process.stderr.write(`sos-milter: cannot start: ${errorMessage(err)}\n`);
    return ExitCode.FAILURE;
  }
  const running = daemon;
  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        // An operator who signals again does not want to wait for the drain.
        running.logger.warn({ signal }, 'second signal: closing the remaining milter connections now');
        running.server.closeNow();
        return;
      }
      signalled = true;
      running.logger.info({ signal }, 'signal received');
      running.stop().then(
        () => resolve(ExitCode.OK),
        (err: unknown) => {
          running.logger.error({ err }, 'error during shutdown');
          resolve(ExitCode.FAILURE);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
