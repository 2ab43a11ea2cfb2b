#!/usr/bin/env node
/**
 * The bare Node responder: the yardstick sos-milter's CPU is compared with. A net.Server that
 * does framing only and the same protocol work and round trips as the daemon: it sends the
 * daemon's own OPTNEG reply (same actions, protocol bits and macro lists, so the MTA side sends
 * the same packets) and answers end of message with CONTINUE — one reply per message. Every
 * other packet (macros, CONNECT, HELO, MAIL, RCPT with SMFIP_NR_*, ABORT) is read and dropped;
 * QUIT closes. No sessions, macros, promises, timers or logging.
 *
 * Usage: node responder-child.js PORT OPTNEG_REPLY_PAYLOAD_HEX
 * Listens on 127.0.0.1:PORT; exits when stdin closes (the harness died) or on SIGTERM.
 */
import { createServer } from 'node:net';
import { Cmd, Framer, packet, Resp } from './wire.js';

const port = Number(process.argv[2]);
const optnegPayload = Buffer.from(process.argv[3] ?? '', 'hex');
if (!Number.isInteger(port) || port <= 0 || optnegPayload.length < 12) {
  console.error('usage: responder-child.js PORT OPTNEG_REPLY_PAYLOAD_HEX');
  process.exit(2);
}
const OPTNEG = packet(Resp.OPTNEG, optnegPayload);
const CONTINUE = packet(Resp.CONTINUE);

const server = createServer({ noDelay: true }, (sock) => {
  const framer = new Framer((cmd) => {
    if (cmd === Cmd.BODYEOB) sock.write(CONTINUE);
    else if (cmd === Cmd.OPTNEG) sock.write(OPTNEG);
    else if (cmd === Cmd.QUIT) sock.end();
  });
  sock.on('data', (chunk: Buffer) => {
    try {
      framer.push(chunk);
    } catch {
      sock.destroy();
    }
  });
  sock.on('error', () => undefined);
});
server.maxConnections = 5000;
server.listen({ port, host: '127.0.0.1', backlog: 2048 });
process.stdin.on('end', () => process.exit(0)).resume();
