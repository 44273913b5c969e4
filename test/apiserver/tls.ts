/**
 * Certificates for loopback TLS: a throwaway CA and certificates it issues, for the API
 * server double and for webhook servers in tests. Keys come from node's native RSA generator
 * (fast); node-forge builds and signs the X.509 certificates (node cannot).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** A certificate authority that can issue certificates. */
export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
}

/** A certificate with its private key, both PEM. */
export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

/** What an issued certificate is for. */
export interface CertificateRequest {
  commonName: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Days of validity (default 2). */
  days?: number;
  /** Client certificate instead of server certificate. */
  client?: boolean;
}

function rsaKeyPair(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { publicPem: publicKey, privatePem: privateKey };
}

function baseCertificate(publicPem: string, commonName: string, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  // A positive serial: clear the top bit so DER does not read it as negative.
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  const now = Date.now();
  // Backdated a minute so a certificate is valid at once even with small clock differences.
  cert.validity.notBefore = new Date(now - 60_000);
  cert.validity.notAfter = new Date(now + days * 24 * 3600_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  return cert;
}

/** Creates a self-signed CA. */
export function createCertificateAuthority(commonName = 'metallb-ts test CA', days = 2): CertificateAuthority {
  const keys = rsaKeyPair();
  const cert = baseCertificate(keys.publicPem, commonName, days);
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.privatePem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem };
}

/** Issues a server (or client) certificate signed by `ca`. */
export function issueCertificate(ca: CertificateAuthority, req: CertificateRequest): IssuedCertificate {
  const keys = rsaKeyPair();
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const cert = baseCertificate(keys.publicPem, req.commonName, req.days ?? 2);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [...(req.dnsNames ?? []).map((value) => ({ type: 2, value })), ...(req.ipAddresses ?? []).map((ip) => ({ type: 7, ip }))];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: !req.client, clientAuth: !!req.client },
    ...(altNames.length ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem };
}

/** A CA and a serving certificate for 127.0.0.1, ::1, localhost and the extra names and addresses given. */
export function loopbackServingCertificate(commonName: string, extraDnsNames: string[] = [], extraIPs: string[] = []): { ca: CertificateAuthority; serving: IssuedCertificate } {
  const ca = createCertificateAuthority(`${commonName} CA`);
  const serving = issueCertificate(ca, { commonName, dnsNames: ['localhost', ...extraDnsNames], ipAddresses: ['127.0.0.1', '::1', ...extraIPs] });
  return { ca, serving };
}
