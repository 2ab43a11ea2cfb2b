/** The outcome of one delivery (all its attempts in this run). */
export type DeliveryResult =
  | { ok: true; attempts: number }
  | {
      ok: false;
      attempts: number;
      error: string;
      /** This notification can never be delivered (a 4xx answer, a refused recipient): given up. */
      permanent: boolean;
      /** The channel itself is unreachable: the rest of its notifications wait for the next run. */
      channelDown: boolean;
    };

export interface Sender {
  send(entry: import('../history/types.js').OutboxEntry): Promise<DeliveryResult>;
  close?(): void;
}
