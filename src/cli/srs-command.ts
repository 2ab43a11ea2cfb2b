// `sos-milter srs encode SENDER | decode ADDRESS [--json]`: the SRS scheme as the daemon applies
// it, configured by the same environment (SRS_DOMAIN, SRS_SECRETS, SRS_MAX_AGE_DAYS).
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/index.js';
import { parseSrsConfig } from '../config/srs.js';
import { environmentHelp } from '../config/variables.js';
import type { Srs } from '../srs/index.js';
import { createSrs } from '../app/srs-parts.js';
import { ExitCode } from '../app/exit-codes.js';
import { errorMessage } from '../log/index.js';

export const SRS_USAGE = 'usage: sos-milter srs encode SENDER | decode ADDRESS [--json]';

const HELP = `${SRS_USAGE}

encode: the SRS address rewrite mode gives SENDER (SRS0, or SRS1 for another forwarder's
        SRS0), or why it is not rewritten (null sender, quoted local part, over 64 octets).
decode: the address an SRS address under SRS_DOMAIN stands for, as the srsdecode socketmap
        answers it, or why it does not decode (forged, expired, malformed, another domain).

  --json       print the result as JSON
  -h, --help   show this help

Environment:
${environmentHelp('srs')}
Exit status: 0 encoded or decoded; 1 not rewritten or not decoded; ${ExitCode.USAGE} usage error;
${ExitCode.CONFIG} bad environment. The secrets are never printed.
`;

export async function runSrsCommand(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    });
  } catch (e) {
    out.write(`sos-milter srs: ${errorMessage(e)}\n${SRS_USAGE}\n`);
    return ExitCode.USAGE;
  }
  if (parsed.values.help) {
    out.write(HELP);
    return ExitCode.OK;
  }
  const [verb, address, ...extra] = parsed.positionals;
  if ((verb !== 'encode' && verb !== 'decode') || address === undefined || extra.length > 0) {
    out.write(`sos-milter srs: expected encode SENDER or decode ADDRESS\n${SRS_USAGE}\n`);
    return ExitCode.USAGE;
  }
  let srs: Srs;
  try {
    srs = createSrs(parseSrsConfig(env));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    out.write(`sos-milter srs: configuration error: ${e.message}\n`);
    return ExitCode.CONFIG;
  }
  const bare = address === '<>' ? '' : address.replace(/^<(.*)>$/, '$1');
  const result = verb === 'encode' ? srs.forward(bare) : srs.reverse(bare);
  if (parsed.values.json) {
    out.write(`${JSON.stringify({ [verb === 'encode' ? 'sender' : 'address']: bare, ...result })}\n`);
  } else if (result.ok) {
    out.write(`${result.address}\n`);
  } else {
    out.write(`sos-milter srs: ${verb === 'encode' ? 'not rewritten' : 'not decoded'} (${result.reason}): ${result.detail}\n`);
  }
  return result.ok ? ExitCode.OK : ExitCode.FAILURE;
}
