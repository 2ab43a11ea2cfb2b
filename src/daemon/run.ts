/**
 * The daemon: reads the configuration from the environment, builds the parts and serves
 * until SIGTERM/SIGINT. Every part is constructed here and nowhere else.
 */
import type { Server } from 'node:http';
import { getHeapStatistics } from 'node:v8';
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import { createLogger, flushLogger, type Logger, type LogDestination } from '../log/index.js';
import { formatSocketSpec, MilterServer } from '../milter/index.js';
import type { SosMetrics } from '../ops/metrics.js';
import { startOpsServer } from '../ops/http-server.js';
import { ExitCode } from '../app/exit-codes.js';
import { HEAP_FLAGS, heapLimitWarning, missingHeapFlags } from './heap-sizing.js';
import { assessmentTimeoutMs, createPolicyParts } from '../app/policy-parts.js';
import { createSosMilterApp } from './sos-app.js';


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
  const metrics: SosMetrics | undefined = config.metricsListen && (await import('../ops/metrics.js')).createMetrics();
  const { stub, resolver, spf, directory, settings, ignoredNextHops } = createPolicyParts(config, logger, { wrapUpstream: metrics?.timeDnsLookups });
  metrics?.watchDnsCache(() => resolver.stats());
  metrics?.watchDnsUpstream(() => stub.stats);
  if (directory) metrics?.watchLdap(() => directory.stats());

  const app = createSosMilterApp({
    settings,
    milterName: config.milterName,
    rejectMessage: config.milterRejectMessage,
    tmpfailMessage: config.milterTmpfailMessage,
    ignoredNextHops,
    spf,
    ownDomains: directory && (metrics ? metrics.timeOwnDomainLookups(directory) : directory),
    logger,
    metrics,
    assessmentTimeoutMs: assessmentTimeoutMs(config),
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
    maxConnections: config.milterMaxConnections,
  });
  metrics?.watchMilterServer(() => server.stats());

  let listening = false;
  const opsServers: Server[] = [];
  const endpoints = { registry: metrics?.registry, live: () => true, ready: () => listening };
  const opsAddresses = [config.metricsListen, config.healthListen].filter((a) => a !== undefined);
  const seen = new Set<string>();
  for (const address of opsAddresses) {
    const key = `${address.host ?? ''}:${address.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    opsServers.push(await startOpsServer(address.host, address.port, endpoints));
    logger.info({ listen: key }, metrics ? 'metrics and health endpoints listening (/metrics, /healthz, /readyz)' : 'health endpoints listening (/healthz, /readyz; /metrics needs METRICS_LISTEN)');
  }

  try {
    await server.listen();
  } catch (err) {
    for (const s of opsServers) s.close();
    await directory?.close();
    throw new Error(`cannot listen on MILTER_SOCKET=${config.milterSocket}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  listening = true;
  reportHeapSizing(config, logger);
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
      await Promise.all(opsServers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      await directory?.close();
      logger.info(`Shutdown ${config.milterName}`);
      flushLogger(logger);
    })();
    return stopping;
  };
  return { config, logger, server, stop };
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
  let daemon: Daemon;
  try {
    daemon = await startDaemon(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sos-milter: configuration error: ${err.message}\n`);
      return ExitCode.CONFIG;
    }
    process.stderr.write(`sos-milter: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    return ExitCode.FAILURE;
  }
  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        // An operator who signals again does not want to wait for the drain.
        daemon.logger.warn({ signal }, 'second signal: closing the remaining milter connections now');
        daemon.server.closeNow();
        return;
      }
      signalled = true;
      daemon.logger.info({ signal }, 'signal received');
      daemon.stop().then(
        () => resolve(ExitCode.OK),
        (err: unknown) => {
          daemon.logger.error({ err }, 'error during shutdown');
          resolve(ExitCode.FAILURE);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
