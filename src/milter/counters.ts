/** What sessions count, into a store the server shares between them. */

export interface SessionCounters {
  protocolErrors: number;
  messages: number;
  callbackErrors: number;
  /** Connections closed because too many packets waited behind a pending callback. */
  queueOverflows: number;
  /** SMFIR_PROGRESS packets sent while an end-of-message reply was pending. */
  progressPackets: number;
}

export function newSessionCounters(): SessionCounters {
  return { protocolErrors: 0, messages: 0, callbackErrors: 0, queueOverflows: 0, progressPackets: 0 };
}
