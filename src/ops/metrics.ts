import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Stats a part exposes for scraping; read at scrape time, so the hot path pays nothing. */
export type StatsSource = () => Record<string, number | boolean>;

export interface SosMetrics {
  registry: Registry;
  messages: Counter<'action' | 'check' | 'ownership'>;
  spfResults: Counter<'check' | 'result'>;
  decisionSeconds: Histogram<'check'>;
  failOpen: Counter<'reason'>;
  /** Exposes a part's counters (DNS cache, LDAP, milter server) as gauges `sos_milter_<prefix>_<key>`. */
  addStatsSource(prefix: string, help: string, source: StatsSource): void;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): SosMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'sos_milter_' });
  const messages = new Counter({
    name: 'sos_milter_messages_total',
    help: 'Judged messages by action (pass, pass-ignored-next-hop, reject, log, tag, none, tempfail)',
    labelNames: ['action', 'check', 'ownership'] as const,
    registers: [registry],
  });
  const spfResults = new Counter({
    name: 'sos_milter_spf_results_total',
    help: 'Results of the SPF assessment per judged message',
    labelNames: ['check', 'result'] as const,
    registers: [registry],
  });
  const decisionSeconds = new Histogram({
    name: 'sos_milter_decision_seconds',
    help: 'Time from MAIL FROM to a ready SPF assessment',
    labelNames: ['check'] as const,
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const failOpen = new Counter({
    name: 'sos_milter_fail_open_total',
    help: 'Messages passed because the record could not be judged (none, permerror, temperror, LDAP error)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const gauges = new Map<string, Gauge<'key'>>();
  return {
    registry,
    messages,
    spfResults,
    decisionSeconds,
    failOpen,
    addStatsSource(prefix, help, source) {
      const name = `sos_milter_${prefix}`;
      if (gauges.has(name)) return;
      const gauge = new Gauge({
        name,
        help,
        labelNames: ['key'] as const,
        registers: [registry],
        collect() {
          for (const [key, value] of Object.entries(source())) this.set({ key }, Number(value));
        },
      });
      gauges.set(name, gauge);
    },
  };
}
