/**
 * The socketmap table `srsdecode`: Postfix's `recipient_canonical_maps =
 * socketmap:inet:HOST:PORT:srsdecode` maps a valid SRS address under SRS_DOMAIN back to the
 * original sender (SRS1: to the first hop's SRS0 address). Everything else, forged, expired,
 * malformed, another domain, a partial key Postfix also tries (`user`, `@domain`), answers
 * NOTFOUND, so Postfix goes on as for any unknown recipient: the map is never an open relay.
 */
import type { Logger } from '../log/index.js';
import type { ReverseRefusal, Srs } from './scheme.js';
import type { SocketmapLookup } from './socketmap-server.js';

export const SRS_DECODE_MAP = 'srsdecode';

/** One answer of the map, for metrics: decoded, or why not. */
export type DecodeOutcome = 'decoded' | ReverseRefusal | 'bad-key';

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0020\u007f]/;

export function srsDecodeLookup(srs: Srs, logger: Logger, onDecode?: (outcome: DecodeOutcome) => void, now: () => number = Date.now): SocketmapLookup {
  return (map, key) => {
    if (map !== SRS_DECODE_MAP) return { status: 'PERM', reason: `unknown map ${JSON.stringify(map.slice(0, 64))}; this server has ${SRS_DECODE_MAP}` };
    if (UNSAFE.test(key)) {
      onDecode?.('bad-key');
      return { status: 'NOTFOUND' };
    }
    const result = srs.reverse(key, now());
    if (!result.ok) {
      onDecode?.(result.reason);
      if (result.reason === 'forged' || result.reason === 'expired' || result.reason === 'malformed') {
        logger.debug({ key, reason: result.reason }, `srsdecode: ${result.reason} SRS address refused: ${result.detail}`);
      }
      return { status: 'NOTFOUND' };
    }
    // What we hand Postfix becomes a recipient: never let a space or control character through.
    if (UNSAFE.test(result.address)) {
      onDecode?.('bad-key');
      return { status: 'NOTFOUND' };
    }
    onDecode?.('decoded');
    logger.debug({ key, address: result.address }, 'srsdecode: decoded');
    return { status: 'OK', value: result.address };
  };
}
