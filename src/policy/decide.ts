import { randomInt } from 'node:crypto';
import type { IgnoredNextHops } from './next-hops.js';
import type { Action, Assessment, MilterMode } from './types.js';

export const SOS_HEADER_NAME = 'X-SOS-Milter';
export const SOS_HEADER_VALUE = 'failed SPF-expectation';

export interface Outcome {
  action: Action;
  /** Set for `reject`: the text after `550 5.7.1 `. */
  rejectText?: string;
  /** Set for `tag`: the header to add at end of message. */
  header?: { name: string; value: string };
  reason: string;
}

export interface OutcomeInput {
  assessment: Assessment;
  mode: MilterMode;
  /** {rcpt_host} of every recipient, undefined where the macro was missing. */
  nextHops: readonly (string | undefined)[];
  ignoredNextHops: IgnoredNextHops;
  milterName: string;
  messageId: string;
  rejectMessage: string;
}

/** The sentence the original logged and sent; log-based metrics match on it. */
export function violationSentence(assessment: Pick<Assessment, 'detail' | 'domain'>): string {
  return `SPF-record (${assessment.detail}) of 5321_from_domain=${assessment.domain} does not permit us to relay this message!`;
}

export function decideOutcome(input: OutcomeInput): Outcome {
  const { assessment } = input;
  if (!assessment.violation) return { action: 'pass', reason: assessment.reason };
  if (input.ignoredNextHops.allIgnored(input.nextHops)) {
    return { action: 'pass-ignored-next-hop', reason: `every next hop is ignored (${input.nextHops.join(', ')})` };
  }
  if (input.mode === 'reject') {
    return {
      action: 'reject',
      rejectText: `${input.milterName}: ${input.messageId} ${violationSentence(assessment)} ${input.rejectMessage}`,
      reason: assessment.reason,
    };
  }
  if (assessment.ownership === 'own') {
    return { action: 'tag', header: { name: SOS_HEADER_NAME, value: SOS_HEADER_VALUE }, reason: assessment.reason };
  }
  return { action: 'log', reason: assessment.reason };
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** 8 random [a-z0-9], as the original's per-message id. */
export function newMessageId(): string {
  let id = '';
  for (let i = 0; i < 8; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return id;
}
