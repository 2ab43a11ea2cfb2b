/**
 * SRS parts built from the configuration: the rewriter rewrite mode uses, the start-up check
 * that SRS_DOMAIN's SPF record authorizes the relays, and the srsdecode socketmap server.
 */
import type { SrsConfig } from '../config/index.js';
import { errorMessage, type Logger } from '../log/index.js';
import type { PolicySettings, RewriteSettings, SpfPort } from '../policy/index.js';
import { ForwardMemo, SocketmapServer, Srs, srsDecodeLookup, type DecodeOutcome, type SocketmapEvent } from '../srs/index.js';

export function createSrs(config: SrsConfig): Srs {
  return new Srs({ secrets: config.secrets, domain: config.domain, maxAgeDays: config.maxAgeDays });
}

export function rewriteSettings(srs: Srs, config: SrsConfig): RewriteSettings {
  return { rewriter: new ForwardMemo(srs), scope: config.rewrite, header: config.header };
}

/**
 * Whether SPF passes for the relays with a sender under SRS_DOMAIN: with OUTBOUND_IPS an
 * RFC 7208 check of each, else the record must match SPF_REGEX as an own domain's must.
 * Returns the problem in words, or undefined when it authorizes them.
 */
export async function srsDomainProblem(domain: string, spf: SpfPort, settings: PolicySettings, signal?: AbortSignal): Promise<string | undefined> {
  const sender = `postmaster@${domain}`;
  if (settings.outboundIps.length > 0) {
    const checks = await spf.checkHostForIps(sender, domain, [...settings.outboundIps], { signal });
    const failing = [...checks].filter(([, check]) => check.result !== 'pass').map(([ip, check]) => `${ip}=${check.result}`);
    return failing.length === 0 ? undefined : `SPF for ${sender} does not pass for every relay (${failing.join(', ')})`;
  }
  const record = await spf.effectiveRecord(domain, { signal });
  if (record.status !== 'found' || record.text === undefined) return `SRS_DOMAIN ${domain} has no usable SPF record (${record.status}: ${record.reason})`;
  if (!settings.spfRegex.matches(record.text)) return `the SPF record of ${domain} ${JSON.stringify(record.text)} does not match SPF_REGEX`;
  return undefined;
}

/** Runs the start-up check in the background: a warning when SRS_DOMAIN does not authorize the relays, never a stop (DNS may be down). */
export function checkSrsDomain(domain: string, spf: SpfPort, settings: PolicySettings, logger: Logger, timeoutMs: number): Promise<void> {
  return srsDomainProblem(domain, spf, settings, AbortSignal.timeout(timeoutMs)).then(
    (problem) => {
      if (problem) logger.warn({ srsDomain: domain }, `SRS_DOMAIN=${domain} does not authorize the relays: ${problem}; rewritten mail will fail SPF at receivers`);
      else logger.info({ srsDomain: domain }, `SRS_DOMAIN=${domain}: its SPF record authorizes the relays`);
    },
    (err: unknown) => logger.warn({ srsDomain: domain, err }, `SRS_DOMAIN=${domain}: its SPF record could not be checked: ${errorMessage(err)}`),
  );
}

export interface SrsCounters {
  srsDecoded(outcome: DecodeOutcome): void;
  srsSocketmap(event: SocketmapEvent): void;
}

export function createSocketmapServer(srs: Srs, config: SrsConfig, logger: Logger, counters?: SrsCounters): SocketmapServer {
  return new SocketmapServer({
    lookup: srsDecodeLookup(srs, logger, counters && ((o) => counters.srsDecoded(o))),
    logger,
    maxConnections: config.socketmap.maxConnections,
    timeoutMs: config.socketmap.timeoutMs,
    onEvent: counters && ((e) => counters.srsSocketmap(e)),
  });
}
