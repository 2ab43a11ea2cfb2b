/** Opens the history named by `--history` / AUDIT_HISTORY; each backend's driver is loaded only when used. */
import { DEFAULT_KEEP_RUNS, isPostgresUrl, type HistoryStore } from './store.js';

export interface OpenOptions {
  keepRuns?: number;
}

/** Opens (creating when needed) the history at `location`; throws HistoryError naming it when that fails. */
export async function openHistory(location: string, options: OpenOptions = {}): Promise<HistoryStore> {
  const keepRuns = options.keepRuns ?? DEFAULT_KEEP_RUNS;
  if (isPostgresUrl(location)) {
    const { openPostgresHistory } = await import('./postgres.js');
    return openPostgresHistory(location, keepRuns);
  }
  const { openSqliteHistory } = await import('./sqlite.js');
  return openSqliteHistory(location, keepRuns);
}
