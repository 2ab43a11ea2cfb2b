// 100,000 fuzzed packets against the daemon process while a healthy Postfix-like client keeps
// asking for verdicts beside them: every verdict must be right, the process must survive, the
// log must stay rate limited, and it must still shut down cleanly. Twice: in reject mode, and in
// rewrite mode with DMARC_CHECK=on (headers collected, the DMARC judgement, CHGFROM). A longer
// run: `npm run fuzz:milter` (scripts/fuzz-milter.mjs; FUZZ_MODE=rewrite for the second).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { E2E_ZONES_DIR, e2eRejectEnv, expectVerdict, listeningPort, startDaemonProcess, type DaemonProcess } from '../support/daemon-process.js';
import { MilterTestClient } from '../support/milter-client.js';
import type { MilterResponse } from '../../src/milter/responses.js';
import { runFuzz } from '../support/milter-fuzz.js';

const PACKETS = 100_000;

/** One healthy message and its check; `q` numbers the connection, `i` the message on it. */
type HealthyMessage = (c: MilterTestClient, q: number, i: number, where: string) => Promise<void>;

const rejectModeMessage: HealthyMessage = async (c, q, i, where) => {
  const sender = (q + i) % 2 === 0 ? '<news@foreign.e2e.test>' : '<news@pass.e2e.test>';
  const final = await c.message(sender, `H${q}x${i}`);
  expectVerdict(sender, final, `${where}: ${JSON.stringify(final)}`);
};

/** Rewrite mode: a foreign -all sender leaves with an SRS envelope sender; with a From: header, as Postfix sends it. */
const rewriteModeMessage: HealthyMessage = async (c, q, i, where) => {
  const foreign = (q + i) % 2 === 0;
  const sender = foreign ? '<news@foreign.e2e.test>' : '<news@pass.e2e.test>';
  const queueId = `H${q}x${i}`;
  await c.mail(sender, [], { i: queueId, '{mail_addr}': sender.slice(1, -1) });
  await c.rcpt('<rcpt@example.net>', [], { i: queueId, '{rcpt_host}': 'mx.example.net', '{rcpt_addr}': 'rcpt@example.net' });
  await c.header('From', ` News <${sender.slice(1, -1)}>`);
  await c.eoh();
  const { final, modifications } = await c.eom({ i: queueId });
  assert.deepEqual(final, { type: 'continue' }, where);
  const changed = modifications.filter((m): m is Extract<MilterResponse, { type: 'chgFrom' }> => m.type === 'chgFrom');
  if (foreign) {
    assert.equal(changed.length, 1, `${where}: ${JSON.stringify(modifications)}`);
    assert.match(changed[0]!.sender, /^<SRS0=[^=]{4}=[A-Z2-7]{2}=foreign\.e2e\.test=news@srs\.fuzz\.test>$/, where);
  } else {
    assert.deepEqual(modifications, [], where);
  }
};

for (const [mode, env, healthyMessage] of [
  ['reject mode', {}, rejectModeMessage],
  ['rewrite mode with DMARC_CHECK=on', { MILTER_MODE: 'rewrite', SRS_DOMAIN: 'srs.fuzz.test', SRS_SECRETS: 'fuzz-only-secret-0123456789abcdef', DMARC_CHECK: 'on' }, rewriteModeMessage],
] as const) {
  describe(`daemon under fuzzing, ${mode}`, { skip: knotSkipReason() ?? false }, () => {
    let knot: KnotInstance;
    let daemon: DaemonProcess;
    let port = 0;

    before(async () => {
      knot = await startKnot({ zonesDir: E2E_ZONES_DIR });
      daemon = await startDaemonProcess({
        MILTER_SOCKET: 'inet:0@127.0.0.1',
        ...e2eRejectEnv(knot.port),
        MILTER_PACKET_TIMEOUT_MS: '2000',
        ...env,
      });
      port = await listeningPort(daemon);
    });

    after(async () => {
      await daemon?.kill();
      await knot?.close();
    });

    test(`${PACKETS} fuzzed packets beside a healthy client that keeps getting correct verdicts`, async () => {
      let fuzzing = true;
      let verdicts = 0;
      const healthy = (async () => {
        let q = 0;
        while (fuzzing) {
          const c = await MilterTestClient.connect({ port, host: '127.0.0.1' }, 15_000);
          await c.openSession();
          for (let i = 0; i < 5; i++) {
            await healthyMessage(c, q, i, `healthy message ${verdicts}`);
            verdicts++;
          }
          q++;
          c.quit();
          await c.waitClosed();
        }
      })();
      const started = Date.now();
      const report = await runFuzz({ port }, { packets: PACKETS, concurrency: 8, seed: 20261130 });
      fuzzing = false;
      await healthy;
      const tookMs = Date.now() - started;
      const rssMiB = daemon.rssKiB() / 1024;
      console.log(
        `# fuzz: ${report.packets} packets (${(report.bytes / 1048576).toFixed(1)} MiB) over ${report.connections} connections in ${tookMs} ms, ` +
          `${report.closedByServer} closed by the daemon; ${verdicts} healthy verdicts; daemon RSS ${rssMiB.toFixed(0)} MiB`,
      );
      assert.equal(daemon.proc.exitCode, null, daemon.tail());
      assert.ok(report.packets >= PACKETS);
      assert.ok(verdicts >= 20, `only ${verdicts} healthy verdicts`);
      assert.ok(report.closedByServer > 0, 'hostile packets closed some connections');
      assert.ok(rssMiB < 192, `RSS ${rssMiB.toFixed(0)} MiB`);

      const termAt = Date.now();
      daemon.proc.kill('SIGTERM');
      const code = await daemon.waitExit(30_000);
      assert.equal(code, 0, daemon.tail());
      console.log(`# exit ${Date.now() - termAt} ms after SIGTERM`);
      const stopped = daemon.lines.find((l) => l.msg === 'milter server stopped');
      assert.ok(stopped, daemon.tail());
      assert.ok((stopped['protocolErrors'] as number) > 0);
      // Rate limited: far fewer protocol-error lines than protocol errors.
      const errorLines = daemon.lines.filter((l) => l.msg === 'milter protocol error, closing connection').length;
      assert.ok(errorLines < (stopped['protocolErrors'] as number), `${errorLines} lines for ${String(stopped['protocolErrors'])} errors`);
      assert.equal(daemon.lines.filter((l) => /internal error/.test(l.msg ?? '')).length, 0, daemon.tail());
      assert.equal(daemon.other.filter((o) => /Error|FATAL/.test(o)).length, 0, daemon.other.join('\n'));
    });
  });
}
