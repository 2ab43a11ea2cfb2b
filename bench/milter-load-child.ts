/**
 * Child process of the milter load benchmark: runs a MilterServer with a trivial application
 * on a loopback port and reports its own CPU time and peak RSS over IPC, so the figures are
 * the milter's alone (not the load client's).
 */
import { MilterServer, Verdict, type MilterApplication } from '../src/milter/index.js';
import { benchSocketKind, benchUnixPath } from './milter-load-socket.js';

const app: MilterApplication = {
  // Shaped like the real application: macros at connect/rcpt/eom, envelope callbacks, one header edit possible.
  actions: ['ADDHDRS'],
  macros: { connect: ['{client_addr}'], envrcpt: ['{rcpt_host}', 'i'], eom: ['i'] },
  async envfrom(ctx, sender) {
    ctx.state['sender'] = sender;
    return Verdict.continue();
  },
  async envrcpt(ctx) {
    ctx.state['host'] = ctx.macro('rcpt_host');
    return Verdict.continue();
  },
  async eom() {
    return Verdict.continue();
  },
};

const socket = benchSocketKind() === 'unix' ? `unix:${benchUnixPath()}` : 'inet:0@127.0.0.1';
const server = new MilterServer(app, { socket, maxConnections: 5000, backlog: 2048 });
let base = process.cpuUsage();
let baseMessages = 0;

process.on('message', (msg: { op: string }) => {
  if (msg.op === 'reset') {
    base = process.cpuUsage();
    baseMessages = server.stats().messages;
    process.send!({ op: 'reset' });
  } else if (msg.op === 'stats') {
    const cpu = process.cpuUsage(base);
    process.send!({
      op: 'stats',
      cpuUs: cpu.user + cpu.system,
      userUs: cpu.user,
      messages: server.stats().messages - baseMessages,
      maxRssKiB: process.resourceUsage().maxRSS,
      stats: server.stats(),
    });
  } else if (msg.op === 'exit') {
    void server.close({ deadlineMs: 1000 }).then(() => process.exit(0));
  }
});

server.listen().then(
  (a) => process.send!(a.kind === 'inet' ? { op: 'ready', port: a.port } : { op: 'ready', path: a.path }),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
