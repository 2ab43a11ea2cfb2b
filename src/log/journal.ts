/**
 * sd-daemon(3) priority prefixes. Under systemd with stdout connected to the journal, a line
 * that starts with `<N>` is stored with syslog priority N (and the prefix removed), so
 * `journalctl -p warning` and the syslog forwarding keep the daemon's levels. systemd sets
 * JOURNAL_STREAM to `<device>:<inode>` of that stream (systemd.exec(5)); comparing it with
 * stdout's own device and inode, as sd_journal_stream_fd's documentation asks, tells the journal
 * from a stdout that was redirected elsewhere (a file, a pipe to another program) by a process
 * that inherited the variable.
 */
import { fstatSync } from 'node:fs';
import type { LevelName } from './render.js';

/** syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
export const PRIORITY_PREFIX: Readonly<Record<LevelName, string>> = { error: '<3>', warn: '<4>', info: '<6>', debug: '<7>' };

/** Whether `fd` is the journal stream that JOURNAL_STREAM in `env` names. */
export function isJournalStream(env: NodeJS.ProcessEnv, fd: number): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!match) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(match[1]!) && st.ino === BigInt(match[2]!);
  } catch {
    return false;
  }
}
