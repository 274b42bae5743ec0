// Certificates and keys for a loopback control plane, made with the openssl CLI (Node's crypto
// cannot sign X.509). A CA, the API server's serving cert, an admin client cert in system:masters,
// and the service-account signing key pair. Idempotent: reuses files that already exist.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  saKey: string;
  saPub: string;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const DAYS = ['-days', '3650'];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A new EC key and a certificate for it signed by the CA, with the given X.509 extensions. */
function issueCert(
  pki: Pki,
  name: string,
  subject: string,
  extensions: string,
): { cert: string; key: string } {
  const cert = join(pki.dir, `${name}.crt`);
  const key = join(pki.dir, `${name}.key`);
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  const csr = join(pki.dir, `${name}.csr`);
  const ext = join(pki.dir, `${name}.ext`);
  openssl(['req', '-new', ...EC_KEY, '-keyout', key, '-out', csr, '-subj', subject]);
  writeFileSync(ext, extensions);
  const ca = ['-CA', pki.caCert, '-CAkey', pki.caKey, '-CAcreateserial'];
  openssl(['x509', '-req', '-in', csr, ...ca, ...DAYS, '-out', cert, '-extfile', ext]);
  return { cert, key };
}

/** Issues a client certificate signed by the CA (CN = user, O = groups); reused when present. */
export function issueClientCert(
  pki: Pki,
  name: string,
  user: string,
  groups: string[] = [],
): { cert: string; key: string } {
  const subject = `/CN=${user}` + groups.map((g) => `/O=${g}`).join('');
  return issueCert(
    pki,
    name,
    subject,
    'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
}

/** Where the files of a PKI folder are, without creating or re-issuing anything. */
export function pkiPaths(dir: string): Pki {
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    servingCert: p('apiserver.crt'),
    servingKey: p('apiserver.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
  };
}

export function ensurePki(dir: string, extraIPs: string[] = []): Pki {
  mkdirSync(dir, { recursive: true });
  const pki = pkiPaths(dir);
  if (!existsSync(pki.caCert)) {
    openssl([
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      pki.caKey,
      '-out',
      pki.caCert,
      ...DAYS,
      '-subj',
      '/CN=trellis-test-ca',
    ]);
  }
  const sans = ['IP:127.0.0.1', 'IP:10.0.0.1', ...extraIPs.map((ip) => `IP:${ip}`), 'DNS:localhost']
    .concat(['kubernetes', 'kubernetes.default', 'kubernetes.default.svc'].map((d) => `DNS:${d}`))
    .join(',');
  issueCert(
    pki,
    'apiserver',
    '/CN=kube-apiserver',
    `subjectAltName=${sans}\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
  );
  issueClientCert(pki, 'admin', 'trellis-admin', ['system:masters']);
  if (!existsSync(pki.saKey)) {
    openssl(['genrsa', '-out', pki.saKey, '2048']);
    openssl(['rsa', '-in', pki.saKey, '-pubout', '-out', pki.saPub]);
  }
  return pki;
}
