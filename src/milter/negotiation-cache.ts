/**
 * The reply to an MTA's option offer, negotiated and encoded once per distinct offer and shared
 * by the sessions of one server (the application, macro lists and payload limit are fixed there).
 *
 * Speed trick, kept for its figure: negotiate() + encodeResponse() cost 2.3 us per connection
 * on the 2-core development VM (load 3.6; a loop of 10^6 calls on the Postfix offer, issue 18),
 * a cache hit well under 0.1 us. Postfix opens one milter connection per SMTP session and a
 * submission session usually carries one message, so that is ~2 us per message (npm run bench,
 * with 10 messages per connection, dilutes it to 0.2 us and cannot see it).
 */
import type { MilterApplication } from './application.js';
import { negotiate, type Offer } from './negotiation.js';
import { encodeResponse, type SymbolList } from './responses.js';

export interface CachedNegotiation {
  negotiated: { version: number; actions: number; protocol: number };
  unavailable: readonly string[];
  symbolLists: readonly SymbolList[];
  packet: Buffer;
}

/** Distinct offers kept; an MTA sends the same one every time, a hostile peer must not grow it. */
const NEGOTIATION_CACHE_LIMIT = 16;

export class NegotiationCache {
  private readonly byOffer = new Map<string, CachedNegotiation>();

  constructor(
    private readonly app: MilterApplication,
    private readonly symbolLists: readonly SymbolList[],
    private readonly maxPayload: number,
  ) {}

  /** The negotiated options and the encoded reply; throws MilterProtocolError for an offer refused. */
  replyTo(offer: Offer): CachedNegotiation {
    const key = `${offer.version}:${offer.actions}:${offer.protocol}`;
    const hit = this.byOffer.get(key);
    if (hit) return hit;
    const n = negotiate(offer, this.app, this.symbolLists, this.maxPayload);
    const entry: CachedNegotiation = {
      negotiated: { version: n.version, actions: n.actions, protocol: n.protocol },
      unavailable: n.unavailable,
      symbolLists: n.symbolLists,
      packet: encodeResponse({ type: 'optneg', version: n.version, actions: n.actions, protocol: n.protocol, symbolLists: n.symbolLists }),
    };
    if (this.byOffer.size < NEGOTIATION_CACHE_LIMIT) this.byOffer.set(key, entry);
    return entry;
  }
}
