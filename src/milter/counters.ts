/** The milter's counts, in one store per server; sessions count into the part they own. */

export interface SessionCounters {
  protocolErrors: number;
  messages: number;
  callbackErrors: number;
  /** Connections closed because too many packets waited behind a pending callback. */
  queueOverflows: number;
  /** SMFIR_PROGRESS packets sent while an end-of-message reply was pending. */
  progressPackets: number;
}

/** What the server counts itself; MilterServerStats documents each. */
export interface ServerCounters extends SessionCounters {
  connectionsTotal: number;
  connectionsRefused: number;
  acceptFdExhausted: number;
  acceptErrors: number;
  idleTimeouts: number;
  packetTimeouts: number;
  writeOverflows: number;
  bufferedBudgetCloses: number;
  shutdownCloses: number;
}

export function newSessionCounters(): SessionCounters {
  return { protocolErrors: 0, messages: 0, callbackErrors: 0, queueOverflows: 0, progressPackets: 0 };
}

export function newServerCounters(): ServerCounters {
  return {
    ...newSessionCounters(),
    connectionsTotal: 0,
    connectionsRefused: 0,
    acceptFdExhausted: 0,
    acceptErrors: 0,
    idleTimeouts: 0,
    packetTimeouts: 0,
    writeOverflows: 0,
    bufferedBudgetCloses: 0,
    shutdownCloses: 0,
  };
}
