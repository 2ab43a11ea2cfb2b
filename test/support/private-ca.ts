/**
 * A private certificate authority made in the test with the openssl CLI: a CA certificate
 * and a server certificate it signed, for loopback TLS tests (slapd's ldaps:// and StartTLS).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PrivateCa {
  dir: string;
  /** PEM of the CA certificate (what LDAP_TLS_CA_FILE points to). */
  caFile: string;
  /** Server certificate and key signed by the CA. */
  certFile: string;
  keyFile: string;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

export function opensslUnavailableReason(): string | null {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'the openssl command is not installed';
  }
}

/** `subjectAltNames` in openssl syntax, e.g. `IP:127.0.0.1,DNS:localhost`. */
export function makePrivateCa(name: string, subjectAltNames: string): PrivateCa {
  const dir = mkdtempSync(join(tmpdir(), 'sos-ca-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${name} test CA`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${name} LDAP server`], dir);
  writeFileSync(join(dir, 'server.ext'), `subjectAltName=${subjectAltNames}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], dir);
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
