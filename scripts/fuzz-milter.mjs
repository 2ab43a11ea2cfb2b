#!/usr/bin/env node
// A long fuzzing run against the daemon process, beside a healthy client whose every verdict
// is checked. The CI test (test/integration/daemon-hostile-fuzz.test.ts) runs 100,000 packets;
// this runs as many as asked for:
//   npm run fuzz:milter -- [PACKETS] [SEED] [CONCURRENCY]      (default 2000000 1 16)
// FUZZ_MODE=rewrite runs the daemon in rewrite mode (SRS, CHGFROM) with DMARC_CHECK=on, so that
// header collection, the DMARC judgement and the rewrite are fuzzed too.
// Needs a build (npm run fuzz:milter builds first) and Knot DNS (knotd), like the integration tests.
import { setInterval, clearInterval } from 'node:timers';

const dist = new URL('../dist/test/support/', import.meta.url);
const { startKnot, knotSkipReason } = await import(new URL('knot.js', dist));
const { E2E_ZONES_DIR, e2eRejectEnv, listeningPort, startDaemonProcess } = await import(new URL('daemon-process.js', dist));
const { MilterTestClient } = await import(new URL('milter-client.js', dist));
const { runFuzz } = await import(new URL('milter-fuzz.js', dist));

const packets = Number(process.argv[2] ?? 2_000_000);
const seed = Number(process.argv[3] ?? 1);
const concurrency = Number(process.argv[4] ?? 16);
const skip = knotSkipReason();
if (skip) {
  console.error(`fuzz-milter: ${skip}`);
  process.exit(2);
}

const knot = await startKnot({ zonesDir: E2E_ZONES_DIR });
const rewrite = process.env.FUZZ_MODE === 'rewrite';
const modeEnv = rewrite ? { MILTER_MODE: 'rewrite', SRS_DOMAIN: 'srs.fuzz.test', SRS_SECRETS: 'fuzz-only-secret-0123456789abcdef', DMARC_CHECK: 'on' } : {};
const daemon = await startDaemonProcess({ MILTER_SOCKET: 'inet:0@127.0.0.1', ...e2eRejectEnv(knot.port), ...modeEnv });
let failed = false;
try {
  const port = await listeningPort(daemon);
  let fuzzing = true;
  let verdicts = 0;
  let rssPeak = 0;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, daemon.rssKiB())), 200);
  const healthy = (async () => {
    for (let q = 0; fuzzing; q++) {
      const c = await MilterTestClient.connect({ port, host: '127.0.0.1' }, 30_000);
      await c.openSession();
      for (let i = 0; i < 5; i++) {
        const foreign = (q + i) % 2 === 0;
        const final = await c.message(foreign ? '<news@foreign.e2e.test>' : '<news@pass.e2e.test>', `H${q}x${i}`);
        // Rewrite mode delivers a violation (with CHGFROM), so every healthy message ends with continue there.
        const ok = foreign && !rewrite ? final?.type === 'replyCode' && /^550 5\.7\.1 /.test(final.text) : final?.type === 'continue';
        if (!ok) throw new Error(`healthy message ${verdicts}: wrong verdict ${JSON.stringify(final)}`);
        verdicts++;
      }
      c.quit();
      await c.waitClosed();
    }
  })();
  const started = Date.now();
  let lastReport = started;
  const progress = setInterval(() => {
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      console.log(`... ${Math.round((Date.now() - started) / 1000)} s, ${verdicts} healthy verdicts, RSS ${(daemon.rssKiB() / 1024).toFixed(0)} MiB`);
    }
  }, 1000);
  const report = await runFuzz({ port }, { packets, seed, concurrency });
  fuzzing = false;
  await healthy;
  clearInterval(progress);
  clearInterval(sampler);
  const s = (Date.now() - started) / 1000;
  console.log(
    `fuzz-milter: ${report.packets} packets (${(report.bytes / 1048576).toFixed(1)} MiB) over ${report.connections} connections in ${s.toFixed(1)} s ` +
      `(seed ${seed}); ${report.closedByServer} closed by the daemon; ${verdicts} healthy verdicts, all correct; daemon RSS peak ${(rssPeak / 1024).toFixed(0)} MiB`,
  );
  if (daemon.proc.exitCode !== null) throw new Error(`daemon exited: ${daemon.tail()}`);
  daemon.proc.kill('SIGTERM');
  const code = await daemon.waitExit(30_000);
  if (code !== 0) throw new Error(`daemon exit ${code}: ${daemon.tail()}`);
  const stopped = daemon.lines.find((l) => l.msg === 'milter server stopped');
  console.log(`daemon counters at exit: ${JSON.stringify(stopped)}`);
  const internal = daemon.lines.filter((l) => /internal error/.test(l.msg ?? ''));
  if (internal.length > 0) throw new Error(`internal errors logged: ${JSON.stringify(internal.slice(0, 3))}`);
} catch (err) {
  failed = true;
  console.error(`fuzz-milter: FAILED: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await daemon.kill();
  await knot.close();
}
process.exit(failed ? 1 : 0);
