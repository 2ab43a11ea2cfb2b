// A reply write that makes the transport end the session (the server does so past its
// write-buffer limit) must not send the replies it was writing a second time: the session's
// finish() flushes what is left, and nothing may be left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MilterSession, type SessionIO } from '../../src/milter/session.js';
import { SILENT_LOGGER, type MilterApplication } from '../../src/milter/application.js';
import { encodeCommand } from '../support/milter-codec.js';

test('a write that ends the session is not repeated by the final flush', () => {
  const writes: Buffer[] = [];
  const ref: { session?: MilterSession } = {};
  const io: SessionIO = {
    write(p) {
      writes.push(p);
      ref.session!.end('limit');
    },
    writeMany(ps) {
      writes.push(...ps);
      ref.session!.end('limit');
    },
    end() {},
  };
  const app: MilterApplication = {};
  const session = new MilterSession(io, {
    id: 't1',
    app,
    logger: SILENT_LOGGER,
    maxPayload: 65535,
    symbolLists: [],
    counters: { protocolErrors: 0, messages: 0, callbackErrors: 0, queueOverflows: 0, progressPackets: 0 },
  });
  ref.session = session;
  // Protocol 0: HELO is answered, so one chunk yields the OPTNEG reply and a CONTINUE.
  session.feed(Buffer.concat([encodeCommand({ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0 }), encodeCommand({ type: 'helo', name: 'x' })]));
  assert.equal(writes.length, 2, 'the OPTNEG reply and the HELO reply, each written once');
  assert.ok(session.isEnded);
});
