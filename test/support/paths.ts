// Paths the tests share. Compiled to dist/test/support/, three folders below the repository.
import { fileURLToPath } from 'node:url';

/** A file of the repository by its path from the root (data, deploy files, package.json). */
export const repoPath = (rel: string): string => fileURLToPath(new URL(`../../../${rel}`, import.meta.url));

/** The compiled command the daemon runs as (`sos-milter`). */
export const MAIN_JS = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
