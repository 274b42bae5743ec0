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

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Issues a client certificate signed by the CA (CN = user, O = groups); reused when present. */
export function issueClientCert(
  pki: Pki,
  name: string,
  user: string,
  groups: string[] = [],
): { cert: string; key: string } {
  const cert = join(pki.dir, `${name}.crt`);
  const key = join(pki.dir, `${name}.key`);
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  const subj = `/CN=${user}` + groups.map((g) => `/O=${g}`).join('');
  const csr = join(pki.dir, `${name}.csr`);
  openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    subj,
  ]);
  const ext = join(pki.dir, `${name}.ext`);
  writeFileSync(ext, 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    pki.caCert,
    '-CAkey',
    pki.caKey,
    '-CAcreateserial',
    '-days',
    '3650',
    '-out',
    cert,
    '-extfile',
    ext,
  ]);
  return { cert, key };
}

export function ensurePki(dir: string, extraIPs: string[] = []): Pki {
  mkdirSync(dir, { recursive: true });
  const p = (f: string) => join(dir, f);
  const pki: Pki = {
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
  if (!existsSync(pki.caCert)) {
    openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      pki.caKey,
      '-out',
      pki.caCert,
      '-days',
      '3650',
      '-subj',
      '/CN=trellis-test-ca',
    ]);
  }
  if (!existsSync(pki.servingCert)) {
    const csr = p('apiserver.csr');
    openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      pki.servingKey,
      '-out',
      csr,
      '-subj',
      '/CN=kube-apiserver',
    ]);
    writeFileSync(
      p('apiserver.ext'),
      `subjectAltName=IP:127.0.0.1,IP:10.0.0.1,${extraIPs.map((ip) => `IP:${ip},`).join('')}DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n` +
        'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
    );
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      pki.caCert,
      '-CAkey',
      pki.caKey,
      '-CAcreateserial',
      '-days',
      '3650',
      '-out',
      pki.servingCert,
      '-extfile',
      p('apiserver.ext'),
    ]);
  }
  issueClientCert(pki, 'admin', 'trellis-admin', ['system:masters']);
  if (!existsSync(pki.saKey)) {
    openssl(['genrsa', '-out', pki.saKey, '2048']);
    openssl(['rsa', '-in', pki.saKey, '-pubout', '-out', pki.saPub]);
  }
  return pki;
}
