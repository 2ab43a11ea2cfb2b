// Runs OpenDMARC's opendmarc-check (Debian package "opendmarc") against a private DNS server.
// opendmarc-check uses the system resolver (resolv.conf, port 53 only), so each run happens in
// a private mount namespace (unshare --mount) with a resolv.conf bind-mounted over the real one,
// naming a UDP relay on a loopback address's port 53 that forwards to the test's Knot. Both need
// root; without it, or without the tools, the reason to skip is given.
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CHECK = '/usr/sbin/opendmarc-check';

export function opendmarcSkipReason(): string | undefined {
  if (!existsSync(CHECK)) return 'opendmarc-check (Debian package "opendmarc") is not installed';
  if (process.getuid?.() !== 0) return 'opendmarc-check needs root here: a private mount namespace (unshare) and a relay on port 53';
  return undefined;
}

/** What opendmarc-check reports for a domain: the record it parsed, or why it has none. */
export type OpendmarcView =
  | { kind: 'record'; p: string; sp: string; adkim: string; aspf: string; pct: number }
  | { kind: 'no-record' }
  | { kind: 'error'; message: string };

export interface OpendmarcChecker {
  check(domain: string): Promise<OpendmarcView>;
  close(): Promise<void>;
}

export async function startOpendmarcChecker(dnsPort: number, relayAddress = '127.16.53.53'): Promise<OpendmarcChecker> {
  const relay = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    relay.once('error', reject);
    relay.bind(53, relayAddress, () => resolve());
  });
  relay.on('message', (msg, rinfo) => {
    const up = dgram.createSocket('udp4');
    const timer = setTimeout(() => up.close(), 5000);
    up.on('message', (answer) => {
      clearTimeout(timer);
      relay.send(answer, rinfo.port, rinfo.address);
      up.close();
    });
    up.send(msg, dnsPort, '127.0.0.1');
  });
  const dir = mkdtempSync(join(tmpdir(), 'sos-opendmarc-'));
  const conf = join(dir, 'resolv.conf');
  writeFileSync(conf, `nameserver ${relayAddress}\noptions timeout:3 attempts:2\n`);
  return {
    async check(domain: string): Promise<OpendmarcView> {
      const script = `mount --bind ${conf} /etc/resolv.conf && exec ${CHECK} "$0"`;
      try {
        const { stdout } = await run('unshare', ['--mount', 'sh', '-c', script, domain], { encoding: 'utf8', timeout: 20_000 });
        const field = (label: string): string => new RegExp(`${label}: (\\S+)`).exec(stdout)?.[1] ?? '?';
        return { kind: 'record', p: field('Domain policy'), sp: field('Subdomain policy'), adkim: field('DKIM alignment'), aspf: field('SPF alignment'), pct: Number(field('Sample percentage')) };
      } catch (e) {
        const stderr = String((e as { stderr?: string }).stderr ?? e);
        if (stderr.includes('lacked a DMARC record')) return { kind: 'no-record' };
        return { kind: 'error', message: stderr.trim().replace(/^.*?: .*?\): /, '') };
      }
    },
    async close(): Promise<void> {
      await new Promise<void>((resolve) => relay.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
