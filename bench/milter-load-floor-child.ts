/**
 * Reference child for the milter load benchmark: answers the same traffic with the least a Node
 * server can do (framing only, fixed replies, no sessions, callbacks, macros or promises). Its CPU
 * per message is the platform floor — sockets, syscalls, event loop — that the milter library
 * cannot go below on the same machine; the difference to milter-load-child is the library's cost.
 * Same IPC protocol as milter-load-child.
 */
import { createServer, type Server } from 'node:net';
import { Cmd, PacketDecoder, Resp, encodePacket } from '../src/milter/index.js';
import { benchListen, benchSocketKind } from './milter-load-socket.js';

const CONTINUE = encodePacket(Resp.CONTINUE);
const optnegPayload = Buffer.alloc(12);
optnegPayload.writeUInt32BE(6, 0);
const OPTNEG = encodePacket(Resp.OPTNEG, optnegPayload);

let messages = 0;
const server: Server = createServer({ noDelay: true }, (sock) => {
  const decoder = new PacketDecoder((cmd) => {
    if (cmd === Cmd.OPTNEG) sock.write(OPTNEG);
    else if (cmd === Cmd.QUIT) sock.end();
    else if (cmd !== Cmd.MACRO && cmd !== Cmd.ABORT) {
      if (cmd === Cmd.BODYEOB) messages++;
      sock.write(CONTINUE);
    }
  });
  sock.on('data', (c: Buffer) => decoder.push(c));
  sock.on('error', () => undefined);
});

let base = process.cpuUsage();
let baseMessages = 0;
process.on('message', (msg: { op: string }) => {
  if (msg.op === 'reset') {
    base = process.cpuUsage();
    baseMessages = messages;
    process.send!({ op: 'reset' });
  } else if (msg.op === 'stats') {
    const cpu = process.cpuUsage(base);
    process.send!({ op: 'stats', cpuUs: cpu.user + cpu.system, userUs: cpu.user, messages: messages - baseMessages, maxRssKiB: process.resourceUsage().maxRSS });
  } else if (msg.op === 'exit') {
    server.close();
    process.exit(0);
  }
});

benchListen(server, benchSocketKind()).then(
  (where) => process.send!({ op: 'ready', ...where }),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
