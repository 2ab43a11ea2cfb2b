import { createRequire } from 'node:module';

/** sos-milter's version, from package.json: dist/src/config/ sits three folders below it in the repository, the image and the npm package alike. */
export function packageVersion(): string {
  try {
    return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
