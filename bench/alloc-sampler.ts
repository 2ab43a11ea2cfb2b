/**
 * Preloaded into the daemon by `profile.js --alloc` (node --import): V8's sampling heap profiler
 * with the samples of collected objects kept, so it counts what is allocated, not what survives
 * (Node 20's --heap-prof keeps only live objects). SIGUSR2 starts sampling, the next SIGUSR2
 * stops it and writes the profile to allocPath(pid), so the harness samples exactly its
 * measured loop. Nothing in src/ knows of it.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const allocPath = (pid: number): string => join(tmpdir(), `sos-bench-alloc-${pid}.heapprofile`);

// Only when preloaded into a server (profile.js imports this module for allocPath alone).
if (process.execArgv.some((a) => a.includes('alloc-sampler'))) {
  const out = allocPath(process.pid);
  const session = new Session();
  session.connect();
  let sampling = false;
  process.on('SIGUSR2', () => {
    if (!sampling) {
      sampling = true;
      session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      return;
    }
    sampling = false;
    session.post('HeapProfiler.stopSampling', (err, result) => {
      // Written whole, then renamed: the harness polls for the name.
      writeFileSync(out + '.tmp', JSON.stringify(err ? { error: String(err) } : result.profile));
      renameSync(out + '.tmp', out);
    });
  });
}
