#!/usr/bin/env node
/**
 * Where a server's CPU goes under the load of the side-by-side bench (closed loop at 32
 * connections, 10 messages each; the daemon in reject mode, LDAP on, warm caches):
 *
 *   node dist/bench/profile.js [--server sos|node] [--paced] [--messages N] [--cpu-prof]
 *                              [--alloc] [--interval-us N] [--no-perf] [--out DIR]
 *                              [--mode reject|rewrite]
 *
 * `perf record` (cpu-clock, call graphs; the server runs with --perf-basic-prof so JIT frames
 * have names) samples the server during the measured loop only. Each sample is put in the
 * category of its leaf-most frame that belongs to one (kernel, GC, logging, metrics, policy,
 * daemon glue, milter library, promise machinery, timers, Node's net/streams): this is CPU time,
 * not wall time, and `--server node` gives the bare responder's breakdown for comparison.
 * The daemon also runs with --trace-gc: collections and allocation per message of the measured
 * loop. --cpu-prof adds V8's sampling profiler (self time by function and by module; note that it
 * samples wall time of the main thread, so time the process waits for a CPU lands on whatever
 * runs, and its own thread costs CPU). --paced profiles the paced level (1000 messages/s over 32
 * connections; default 30,000 messages). --alloc preloads alloc-sampler.js into the server: V8's
 * sampling heap profiler over the measured loop, collected objects included, gives bytes
 * allocated per message by allocating function. Raw files stay in DIR (a temp dir by default):
 * daemon.log, perf.data, *.cpuprofile (open in Chrome DevTools). --mode profiles the daemon on the
 * rewrite bench's load instead (every message a violation; MILTER_MODE=reject or rewrite), to
 * see where the two modes differ.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad, type Target } from './load.js';
import { allocPath } from './alloc-sampler.js';
import { TrafficPlan } from './mta-client.js';
import { killChildren, startDaemon, startResponder, type DaemonChild, type ServerChild } from './servers.js';
import { REJECT_CHECK, REWRITE_CHECK, SRS_DOMAIN, VIOLATION_MIX } from './rewrite-bench.js';
import { closedOpts, NODE_CHECK, optnegOf, PACED_RATE, pacedOpts, SOS_CHECK } from './side-by-side.js';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const fmt = (x: number, digits = 2): string => (Math.round(x * 10 ** digits) / 10 ** digits).toFixed(digits);

/** Groups a script URL into the part of the system it belongs to. */
export function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native/builtin)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `npm:${nm[1]}`;
  const own = /\/dist\/(src\/[^/]+\/[^/]+)\.js$/.exec(url);
  if (own) return own[1]!;
  return url.replace(/^node:internal\//, 'node:');
}

/** Self time (µs) per function and per module from a .cpuprofile. */
export function selfTimes(profile: CpuProfile): { byFunction: Map<string, number>; byModule: Map<string, number>; totalUs: number; idleUs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample: it belongs to the sample before it.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    totalUs += us;
    const mod = moduleOf(url, functionName);
    const fn = `${functionName || '(anonymous)'} ${mod}${url ? ':' + (lineNumber + 1) : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
  }
  return { byFunction, byModule, totalUs, idleUs };
}

interface HeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapProfileNode[];
}
interface HeapProfile {
  head: HeapProfileNode;
}

/** Bytes allocated per function from a sampling heap profile. */
export function allocations(profile: HeapProfile): { byFunction: Map<string, number>; total: number } {
  const byFunction = new Map<string, number>();
  let total = 0;
  const stack: HeapProfileNode[] = [profile.head];
  while (stack.length > 0) {
    const n = stack.pop()!;
    stack.push(...n.children);
    if (n.selfSize === 0) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const key = `${functionName || '(anonymous)'} ${moduleOf(url, functionName)}${url ? ':' + (lineNumber + 1) : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + n.selfSize);
    total += n.selfSize;
  }
  return { byFunction, total };
}

export interface GcSummary {
  events: Record<string, { count: number; pauseMs: number; maxPauseMs: number }>;
  /** Young-generation bytes allocated, estimated as heap growth between consecutive GCs. */
  allocatedMB: number;
}

/** Sums --trace-gc lines: `[pid:addr]  1234 ms: Scavenge 10.1 (12.3) -> 9.8 (13.3) MB, 0.85 / 0.00 ms ...`. */
export function summariseTraceGc(text: string): GcSummary {
  const events: GcSummary['events'] = {};
  let allocatedMB = 0;
  let lastAfter: number | undefined;
  const re = /\d+ ms: ([A-Za-z-]+(?: \(reduce\))?)[^0-9]*([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const kind = m[1]!;
    const before = Number(m[2]);
    const after = Number(m[3]);
    const pause = Number(m[4]);
    const e = (events[kind] ??= { count: 0, pauseMs: 0, maxPauseMs: 0 });
    e.count++;
    e.pauseMs += pause;
    e.maxPauseMs = Math.max(e.maxPauseMs, pause);
    if (lastAfter !== undefined && before > lastAfter) allocatedMB += before - lastAfter;
    lastAfter = after;
  }
  return { events, allocatedMB };
}

function readFrom(path: string, offset: number): string {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function perfUsable(): boolean {
  const r = spawnSync('perf', ['record', '-e', 'cpu-clock', '-o', '/dev/null', '--', 'true'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

/** Categories a perf sample can fall in, tried on its frames from the leaf up; kernel leaves first. */
const PERF_CATEGORIES: [string, RegExp][] = [
  ['profiler (V8 sampler thread, signals)', /v8::sampler|SamplingEventsProcessor|CpuProfiler|ProfilerListener/],
  ['GC (V8 heap: scavenges, marking, sweeping, write barriers)', /v8::internal::(Heap|Scavenge|Scavenger|MarkCompact|ConcurrentMarking|MinorGC|Sweeper|MemoryAllocator|GCTracer|IncrementalMarking|MarkingBarrier|Evacuat|PagedSpace|SemiSpace)|Builtins_RecordWrite/],
  ['logging (pino, sonic-boom, src/log, log file writes)', /node_modules\/(pino|sonic-boom|thread-stream)\/|\/src\/log\/|uv__fs_write|uv__fs_work/],
  ['metrics (prom-client, src/ops)', /node_modules\/prom-client\/|\/src\/ops\//],
  ['policy, SPF, DNS, LDAP (src/policy, spf, dns, ldap)', /\/src\/(policy|spf|dns|ldap)\//],
  ['daemon glue (src/daemon)', /\/src\/daemon\//],
  ['milter library (src/milter)', /\/src\/milter\//],
  ['bare responder (bench/)', /\/bench\/(responder-child|wire)\.js/],
  ['timers (node:timers)', /node:internal\/timers|node:timers|uv__run_timers/],
  ['promise and microtask machinery', /RunMicrotasks|PromiseFulfillReactionJob|PromiseRejectReactionJob|processTicksAndRejections|AsyncFunctionAwait|Builtins_Promise|PerformCheckpoint/],
  ["Node's net and streams (JS)", /node:(net|events|buffer|internal\/(streams|stream_base_commons|net|event_target|buffer))/],
];

/** CPU share by category from `perf script` output (leaf-first frame lines under each sample). */
export function categorisePerf(script: string): { samples: number; byCategory: Map<string, number>; kernelByCategory: Map<string, number> } {
  const byCategory = new Map<string, number>();
  const kernelByCategory = new Map<string, number>();
  let samples = 0;
  for (const block of script.split('\n\n')) {
    const frames = block.split('\n').slice(1).map((l) => l.trim()).filter(Boolean);
    if (frames.length === 0) continue;
    samples++;
    const kernelLeaf = /^ffffffff/.test(frames[0]!);
    let category = kernelLeaf ? 'kernel (system calls, network stack, scheduler)' : 'other native code (V8, Node, libc)';
    if (!kernelLeaf || !frames.some((f) => /v8::sampler|tgkill/.test(f))) {
      // Kernel time is charged to the kernel unless it belongs to the profiler.
      if (!kernelLeaf) {
        for (const f of frames) {
          const hit = PERF_CATEGORIES.find(([, re]) => re.test(f));
          if (hit) {
            category = hit[0];
            break;
          }
        }
      } else {
        // Kernel time, but say on whose behalf: the first user frame with a category.
        for (const f of frames) {
          if (/^ffffffff/.test(f)) continue;
          const hit = PERF_CATEGORIES.find(([, re]) => re.test(f));
          if (hit) {
            kernelByCategory.set(hit[0], (kernelByCategory.get(hit[0]) ?? 0) + 1);
            break;
          }
        }
      }
    } else {
      category = PERF_CATEGORIES[0]![0];
    }
    byCategory.set(category, (byCategory.get(category) ?? 0) + 1);
  }
  return { samples, byCategory, kernelByCategory };
}

function argValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

function top(map: Map<string, number>, n: number, perMessage: number, totalUs: number): string[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `  ${fmt(us / perMessage).padStart(7)} us/msg  ${fmt((100 * us) / totalUs, 1).padStart(5)} %  ${k}`);
}

async function main(argv: string[]): Promise<void> {
  const which = argValue(argv, '--server') ?? 'sos';
  if (which !== 'sos' && which !== 'node') throw new Error('--server must be sos or node');
  const paced = argv.includes('--paced');
  const messages = Number(argValue(argv, '--messages') ?? (paced ? 30_000 : 100_000));
  const dir = argValue(argv, '--out') ?? mkdtempSync(join(tmpdir(), 'sos-profile-'));
  mkdirSync(dir, { recursive: true });
  const intervalUs = Number(argValue(argv, '--interval-us') ?? 250);
  const withPerf = !argv.includes('--no-perf') && perfUsable();
  const withCpuProf = argv.includes('--cpu-prof') || !withPerf;
  const withAlloc = argv.includes('--alloc');
  const mode = argValue(argv, '--mode');
  if (mode !== undefined && mode !== 'reject' && mode !== 'rewrite') throw new Error('--mode must be reject or rewrite');
  const modeEnv: Record<string, string> =
    mode === 'rewrite' ? { MILTER_MODE: 'rewrite', SRS_DOMAIN, SRS_SECRETS: 'profile-only-srs-secret-of-32chr' } : mode === 'reject' ? { MILTER_MODE: 'reject' } : {};
  const nodeArgs = [
    ...(withCpuProf ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${intervalUs}`] : []),
    ...(withAlloc ? ['--import', new URL('./alloc-sampler.js', import.meta.url).href] : []),
    ...(which === 'sos' ? ['--trace-gc'] : []),
    ...(withPerf ? ['--perf-basic-prof-only-functions'] : []),
  ];
  let daemon: DaemonChild | undefined;
  let server: ServerChild | undefined;
  let perf: ChildProcess | undefined;
  try {
    daemon = await startDaemon(dir, which === 'sos' ? nodeArgs : [], modeEnv);
    const payload = await optnegOf(daemon.port);
    server = which === 'sos' ? daemon : await startResponder(payload, nodeArgs);
    const check = which === 'node' ? NODE_CHECK : mode === 'rewrite' ? REWRITE_CHECK : mode === 'reject' ? REJECT_CHECK : SOS_CHECK;
    const target: Target = { server, plan: new TrafficPlan(payload), check, mix: mode ? VIOLATION_MIX : undefined, messagesSoFar: 0 };
    await runLoad(target, closedOpts(5000));

    const logOffset = statSync(daemon.logPath).size;
    const allocFile = allocPath(server.pid);
    if (withAlloc) process.kill(server.pid, 'SIGUSR2');
    if (withPerf) {
      perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '2000', '-g', '-p', String(server.pid), '-o', join(dir, 'perf.data')], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 500));
    }
    const r = await runLoad(target, paced ? pacedOpts(messages / PACED_RATE) : closedOpts(messages));
    if (perf) {
      perf.kill('SIGINT');
      await new Promise((res) => perf!.once('exit', res));
    }
    if (withAlloc) {
      process.kill(server.pid, 'SIGUSR2');
      for (let i = 0; i < 100 && !existsSync(allocFile); i++) await new Promise((res) => setTimeout(res, 100));
    }
    const gcText = readFrom(daemon.logPath, logOffset);
    await server.stop();
    await daemon.stop();

    console.log(`${server.name}, ${paced ? `paced at ${PACED_RATE}/s` : 'closed loop'}, 32 connections, ${r.messages} messages: ${r.cpuUsPerMessage} us/msg CPU (${r.userUsPerMessage} user), ${r.messagesPerSec} msg/s, p99 ${r.p99Ms} ms`);
    console.log(`(profiling costs CPU itself; the shares matter, the us/msg are that share of the figure above)\nraw files in ${dir}`);

    if (withPerf) {
      const script = spawnSync('perf', ['script', '-i', join(dir, 'perf.data'), '-F', 'tid,ip,sym'], { encoding: 'utf8', maxBuffer: 1 << 30 });
      const p = categorisePerf(script.stdout);
      console.log(`\nperf (cpu-clock, ${p.samples} samples of the measured loop), by the leaf-most frame's category:`);
      for (const [k, n] of [...p.byCategory].sort((a, b) => b[1] - a[1])) {
        console.log(`  ${fmt((r.cpuUsPerMessage * n) / p.samples, 1).padStart(6)} us/msg  ${fmt((100 * n) / p.samples, 1).padStart(5)} %  ${k}`);
      }
      console.log('  of the kernel time, on behalf of:');
      for (const [k, n] of [...p.kernelByCategory].sort((a, b) => b[1] - a[1]).slice(0, 6)) {
        console.log(`  ${fmt((r.cpuUsPerMessage * n) / p.samples, 1).padStart(6)} us/msg  ${fmt((100 * n) / p.samples, 1).padStart(5)} %    ${k}`);
      }
      const syms = spawnSync('perf', ['report', '-i', join(dir, 'perf.data'), '--stdio', '--no-children', '--sort', 'sym', '--percent-limit', '0.7', '-g', 'none'], { encoding: 'utf8', maxBuffer: 64 << 20 });
      console.log('\nperf, top symbols by self time:');
      console.log(syms.stdout.split('\n').filter((l) => /%/.test(l) && !l.startsWith('#')).slice(0, 25).join('\n'));
    }

    if (withCpuProf) {
      const profFile = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (!profFile) throw new Error(`no .cpuprofile in ${dir}`);
      const s = selfTimes(JSON.parse(readFileSync(join(dir, profFile), 'utf8')) as CpuProfile);
      const all = target.messagesSoFar;
      console.log(`\nV8 CPU profile (${intervalUs} us sampling, main thread, whole life): ${fmt(s.totalUs / all)} us/msg busy over ${all} messages (idle excluded)`);
      console.log('self time by module:');
      console.log(top(s.byModule, 25, all, s.totalUs).join('\n'));
      console.log('\nself time by function:');
      console.log(top(s.byFunction, 40, all, s.totalUs).join('\n'));
    }

    if (withAlloc) {
      const h = allocations(JSON.parse(readFileSync(allocFile, 'utf8')) as HeapProfile);
      rmSync(allocFile, { force: true });
      console.log(`\nV8 sampling heap profiler, collected objects included (measured loop): ${fmt(h.total / r.messages / 1024, 1)} KB allocated per message, by allocating function:`);
      console.log(
        [...h.byFunction.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 30)
          .map(([k, bytes]) => `  ${fmt(bytes / r.messages, 0).padStart(7)} B/msg  ${fmt((100 * bytes) / h.total, 1).padStart(5)} %  ${k}`)
          .join('\n'),
      );
    }

    if (which === 'sos') {
      const gc = summariseTraceGc(gcText);
      console.log(`\n--trace-gc over the measured ${r.messages} messages: about ${fmt((gc.allocatedMB * 1024 * 1024) / r.messages / 1024, 1)} KB allocated per message`);
      for (const [kind, e] of Object.entries(gc.events)) {
        console.log(`  ${kind}: ${e.count} (every ${fmt(r.messages / e.count, 0)} messages), ${fmt(e.pauseMs, 1)} ms in all = ${fmt((e.pauseMs * 1000) / r.messages)} us/msg, longest ${fmt(e.maxPauseMs)} ms`);
      }
    }
  } finally {
    if (perf && perf.exitCode === null) perf.kill('SIGKILL');
    await server?.stop();
    await daemon?.stop();
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err);
  killChildren();
  process.exitCode = 1;
});
