#!/usr/bin/env node
/**
 * `sos-milter` runs the daemon; `sos-milter spf …` evaluates one SPF check against live DNS;
 * `sos-milter health` asks a running daemon whether it is healthy.
 */
import { environmentHelp } from '../config/variables.js';
import { ExitCode } from '../app/exit-codes.js';
import { packageVersion } from '../config/version.js';

// Each command is loaded when it runs: `health` runs every 30 s in a container and should not
// load the daemon, the SPF evaluator and LDAP client first.

const USAGE = `usage:
  sos-milter                 run the milter (configured by environment variables, see README)
  sos-milter spf IP SENDER [--helo NAME] [--json]
                             evaluate SENDER's SPF policy for client IP against live DNS
  sos-milter check SENDER [--client IP] [--helo NAME] [--next-hop HOP]... [--json]
                             what the milter, configured by this environment, would do
                             with a message from SENDER (live DNS and LDAP)
  sos-milter audit [--json|--csv] [--concurrency N] [--only-broken]
                             judge every own domain in LDAP, with the remedy for each
                             that fails
  sos-milter srs encode SENDER | decode ADDRESS [--json]
                             the SRS address rewrite mode makes of SENDER, or what an
                             SRS address decodes to (SRS_DOMAIN, SRS_SECRETS)
  sos-milter health [--ready] [--timeout MS]
                             ask the running daemon configured by this environment for
                             /healthz (/readyz); exit 0 healthy, 1 not (container HEALTHCHECK)
  sos-milter --help | --version
  sos-milter COMMAND --help  the command's options, environment and exit status`;

const HELP = `${USAGE}

The milter (no command) reads:
${environmentHelp('daemon')}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      return (await import('../daemon/run.js')).runDaemon(process.env);
    case 'spf':
      return (await import('./spf-command.js')).runSpfCommand(rest, process.env, process.stdout);
    case 'check':
      return (await import('./check-command.js')).runCheckCommand(rest, process.env, process.stdout);
    case 'audit':
      return (await import('./audit-command.js')).runAuditCommand(rest, process.env, { out: process.stdout, err: process.stderr });
    case 'srs':
      return (await import('./srs-command.js')).runSrsCommand(rest, process.env, process.stdout);
    case 'health':
      return (await import('./health-command.js')).runHealthCommand(rest, process.env, { out: process.stdout, err: process.stderr });
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return ExitCode.OK;
    case '-V':
    case '--version':
      process.stdout.write(`sos-milter ${packageVersion()}\n`);
      return ExitCode.OK;
    default:
      process.stderr.write(`sos-milter: unknown command ${JSON.stringify(command)}\n${USAGE}\n`);
      return ExitCode.USAGE;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`sos-milter: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = ExitCode.FAILURE;
  },
);
