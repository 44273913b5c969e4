/**
 * The webhook's serving certificate.
 *
 * Self-managed (the default): the controller makes a CA and a serving certificate for
 * `<service>.<namespace>.svc` with node-forge, keeps both in a Secret that all replicas share
 * (the first to create it wins; the others read the winner's), writes the CA into the
 * `caBundle` of every webhook of our Mutating- and ValidatingWebhookConfiguration, and renews
 * the lot when less than a third of its validity is left. A renewal makes a new CA too; the
 * bundle then holds the new CA and every previous one that has not expired, and it is written
 * to the webhook configurations *before* any replica serves the new certificate, so the API
 * server trusts whichever certificate a replica presents during the switch.
 *
 * Mounted (`--cert-dir`): cert-manager or the operator provides tls.crt/tls.key in a folder;
 * the controller reads them and reloads them when they change. cert-manager's CA injector then
 * owns the caBundle.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AdmissionregistrationV1Api, CoreV1Api, V1Secret } from '@kubernetes/client-node';
import forge from 'node-forge';

import type { Clock } from '../kube/clock.js';

export { type Clock, systemClock } from '../kube/clock.js';

/** What the HTTPS server presents. */
export interface ServingCertificate {
  certPem: string;
  keyPem: string;
}

/** Everything the shared Secret holds. */
export interface CertificateBundle extends ServingCertificate {
  /** The CA that signed certPem. */
  caCertPem: string;
  caKeyPem: string;
  /** PEMs the API server must trust: the current CA first, then unexpired previous ones. */
  caBundlePem: string;
}

/** A stored bundle with the version to update it from. */
export interface StoredBundle {
  bundle: CertificateBundle;
  resourceVersion: string;
}

/** Which webhook configuration a caBundle goes into. */
export type WebhookConfigurationKind = 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';

/** The narrow I/O the certificate manager needs. */
export interface CertStore {
  /** The Secret's bundle, or undefined if there is no Secret (or it is unusable). */
  read(): Promise<StoredBundle | undefined>;
  /** Creates the Secret; false if it exists already (409). */
  create(bundle: CertificateBundle): Promise<boolean>;
  /** Replaces the Secret if it is still at resourceVersion; false on conflict (409). */
  replace(bundle: CertificateBundle, resourceVersion: string): Promise<boolean>;
  /**
   * Sets clientConfig.caBundle of every webhook in the named configuration; returns
   * 'unchanged' when all already had it, 'missing' when the configuration does not exist.
   */
  setCaBundle(kind: WebhookConfigurationKind, name: string, caBundlePem: string): Promise<'patched' | 'unchanged' | 'missing'>;
}

const SECRET_KEYS = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', caKey: 'ca.key', caCurrent: 'ca-current.crt' } as const;

/** A CertStore over client-node: one Secret and our two webhook configurations. */
export class KubeCertStore implements CertStore {
  constructor(
    private readonly core: CoreV1Api,
    private readonly admissionregistration: AdmissionregistrationV1Api,
    private readonly namespace: string,
    private readonly secretName: string,
  ) {}

  async read(): Promise<StoredBundle | undefined> {
    let secret: V1Secret;
    try {
      secret = await this.core.readNamespacedSecret({ name: this.secretName, namespace: this.namespace });
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
    const d = secret.data ?? {};
    const get = (k: string): string | undefined => (d[k] === undefined ? undefined : Buffer.from(d[k], 'base64').toString('utf8'));
    const certPem = get(SECRET_KEYS.cert);
    const keyPem = get(SECRET_KEYS.key);
    const caBundlePem = get(SECRET_KEYS.ca);
    const caKeyPem = get(SECRET_KEYS.caKey);
    const caCertPem = get(SECRET_KEYS.caCurrent);
    const resourceVersion = secret.metadata?.resourceVersion ?? '';
    // A Secret missing a key (edited by hand) is treated as expired: the next renewal replaces it.
    if (!certPem || !keyPem || !caBundlePem || !caKeyPem || !caCertPem) {
      return { bundle: { certPem: '', keyPem: '', caBundlePem: '', caKeyPem: '', caCertPem: '' }, resourceVersion };
    }
    return { bundle: { certPem, keyPem, caBundlePem, caKeyPem, caCertPem }, resourceVersion };
  }

  async create(bundle: CertificateBundle): Promise<boolean> {
    try {
      await this.core.createNamespacedSecret({ namespace: this.namespace, body: this.secret(bundle) });
      return true;
    } catch (e) {
      if (statusOf(e) === 409) return false;
      throw e;
    }
  }

  async replace(bundle: CertificateBundle, resourceVersion: string): Promise<boolean> {
    const body = this.secret(bundle);
    body.metadata = { ...body.metadata, resourceVersion };
    try {
      await this.core.replaceNamespacedSecret({ name: this.secretName, namespace: this.namespace, body });
      return true;
    } catch (e) {
      if (statusOf(e) === 409) return false;
      throw e;
    }
  }

  async setCaBundle(kind: WebhookConfigurationKind, name: string, caBundlePem: string): Promise<'patched' | 'unchanged' | 'missing'> {
    const caBundle = Buffer.from(caBundlePem).toString('base64');
    const api = this.admissionregistration;
    // Read-modify-replace with the resourceVersion; retry when someone else wrote in between.
    for (let attempt = 0; ; attempt++) {
      let config;
      try {
        config = kind === 'MutatingWebhookConfiguration' ? await api.readMutatingWebhookConfiguration({ name }) : await api.readValidatingWebhookConfiguration({ name });
      } catch (e) {
        if (statusOf(e) === 404) return 'missing';
        throw e;
      }
      const webhooks = config.webhooks ?? [];
      if (webhooks.every((w) => w.clientConfig.caBundle === caBundle)) return 'unchanged';
      for (const w of webhooks) w.clientConfig.caBundle = caBundle;
      try {
        if (kind === 'MutatingWebhookConfiguration') await api.replaceMutatingWebhookConfiguration({ name, body: config as never });
        else await api.replaceValidatingWebhookConfiguration({ name, body: config as never });
        return 'patched';
      } catch (e) {
        if (statusOf(e) !== 409 || attempt >= 5) throw e;
      }
    }
  }

  private secret(bundle: CertificateBundle): V1Secret {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: this.secretName, namespace: this.namespace, labels: { 'app.kubernetes.io/name': 'metallb', 'app.kubernetes.io/component': 'webhook-cert' } },
      type: 'kubernetes.io/tls',
      data: {
        [SECRET_KEYS.cert]: b64(bundle.certPem),
        [SECRET_KEYS.key]: b64(bundle.keyPem),
        [SECRET_KEYS.ca]: b64(bundle.caBundlePem),
        [SECRET_KEYS.caCurrent]: b64(bundle.caCertPem),
        [SECRET_KEYS.caKey]: b64(bundle.caKeyPem),
      },
    };
  }
}

/** The HTTP status of a client-node error (ApiException.code), if any. */
function statusOf(e: unknown): number | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'number') return (e as { code: number }).code;
  return undefined;
}

// ---- issuing ------------------------------------------------------------------------------

/** The DNS names a webhook Service is reached by. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

function rsaKeyPair(): { publicPem: string; privatePem: string } {
  // node's native generator: forge's pure-JS RSA-2048 takes seconds.
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { publicPem: publicKey, privatePem: privateKey };
}

function newCertificate(publicPem: string, commonName: string, notBefore: Date, notAfter: Date): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f; // positive in DER
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  return cert;
}

/** Options of issueBundle. */
export interface IssueOptions {
  service: string;
  namespace: string;
  now: Date;
  validityMs: number;
  /** CA PEMs to keep trusting (previous CAs); expired ones are dropped. */
  previousCaBundlePem?: string;
}

/** Makes a new CA and a serving certificate for the webhook Service, signed by it. */
export function issueBundle(options: IssueOptions): CertificateBundle {
  // Backdated a little: API servers whose clocks run slightly behind ours accept it at once.
  const notBefore = new Date(options.now.getTime() - 5 * 60_000);
  const notAfter = new Date(options.now.getTime() + options.validityMs);
  const caKeys = rsaKeyPair();
  const caKey = forge.pki.privateKeyFromPem(caKeys.privatePem);
  const ca = newCertificate(caKeys.publicPem, `metallb-webhook-ca@${Math.floor(options.now.getTime() / 1000)}`, notBefore, notAfter);
  ca.setIssuer(ca.subject.attributes);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKey, forge.md.sha256.create());

  const keys = rsaKeyPair();
  const names = serviceDnsNames(options.service, options.namespace);
  const cert = newCertificate(keys.publicPem, `${options.service}.${options.namespace}.svc`, notBefore, notAfter);
  cert.setIssuer(ca.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) },
  ]);
  cert.sign(caKey, forge.md.sha256.create());

  // forge writes CRLF line ends; LF everywhere keeps bundles comparable as text.
  const caCertPem = forge.pki.certificateToPem(ca).replace(/\r\n/g, '\n');
  const kept = splitPems(options.previousCaBundlePem ?? '').filter((pem) => pem !== caCertPem && !expired(pem, options.now));
  return {
    certPem: forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n'),
    keyPem: keys.privatePem,
    caCertPem,
    caKeyPem: caKeys.privatePem,
    caBundlePem: [caCertPem, ...kept].map((p) => p.trim() + '\n').join(''),
  };
}

/** The PEM blocks of a bundle. */
export function splitPems(bundle: string): string[] {
  return (
    bundle
      .replace(/\r\n/g, '\n')
      .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)
      ?.map((p) => p + '\n') ?? []
  );
}

function expired(pem: string, now: Date): boolean {
  try {
    return new Date(new X509Certificate(pem).validTo).getTime() <= now.getTime();
  } catch {
    return true;
  }
}

/** Whether a certificate needs renewing: unreadable, or less than `renewFraction` of its validity left. */
export function needsRenewal(certPem: string, now: Date, renewFraction = 1 / 3): boolean {
  if (!certPem) return true;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return true;
  }
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  return to - now.getTime() < (to - from) * renewFraction;
}

// ---- the self-managed mode ----------------------------------------------------------------

/** Options of CertManager. */
export interface CertManagerOptions {
  store: CertStore;
  clock: Clock;
  /** The webhook Service (its DNS names go into the certificate). */
  service: string;
  namespace: string;
  /** Our webhook configurations, whose caBundle we own. */
  mutatingWebhookConfiguration?: string;
  validatingWebhookConfiguration?: string;
  /** Validity of the CA and the serving certificate (default 365 days). */
  validityMs?: number;
  /** Renew when less than this fraction of the validity is left (default 1/3). */
  renewFraction?: number;
  log?: (line: string) => void;
}

/**
 * Keeps the shared serving certificate current. Call `sync()` at start (before serving) and
 * then periodically (`start(intervalMs)`); listeners hear about every new certificate, and the
 * HTTPS server swaps its secure context in one.
 */
export class CertManager {
  private currentBundle: CertificateBundle | undefined;
  private readonly listeners: ((cert: ServingCertificate) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CertificateBundle> | undefined;

  constructor(private readonly options: CertManagerOptions) {}

  /** The certificate in use, after the first sync. */
  get current(): CertificateBundle | undefined {
    return this.currentBundle;
  }

  /** Calls listener with every certificate that replaces the current one. */
  onChange(listener: (cert: ServingCertificate) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Makes sure a valid certificate exists in the Secret (creating or renewing it), that our
   * webhook configurations trust its CA, and that we serve it. Concurrent calls share one run.
   */
  sync(): Promise<CertificateBundle> {
    this.running ??= this.syncOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Runs sync every intervalMs until stop(); errors are logged and retried on the next tick. */
  start(intervalMs: number): void {
    this.stop();
    this.timer = setInterval(() => {
      this.sync().catch((e: unknown) => this.log(`certificate sync failed: ${(e as Error).message}`));
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async syncOnce(): Promise<CertificateBundle> {
    const { store, clock } = this.options;
    const renewFraction = this.options.renewFraction ?? 1 / 3;
    let bundle: CertificateBundle | undefined;
    for (let attempt = 0; bundle === undefined; attempt++) {
      if (attempt > 5) throw new Error('could not store the webhook certificate: the Secret keeps changing');
      const stored = await store.read();
      const now = clock.now();
      if (!stored) {
        const fresh = this.issue(now, undefined);
        if (await store.create(fresh)) {
          this.log('created the webhook serving certificate');
          bundle = fresh;
        }
        // 409: another replica created it first; read theirs on the next attempt.
      } else if (needsRenewal(stored.bundle.certPem, now, renewFraction) || needsRenewal(stored.bundle.caCertPem, now, renewFraction)) {
        const fresh = this.issue(now, stored.bundle.caBundlePem);
        if (await store.replace(fresh, stored.resourceVersion)) {
          this.log('renewed the webhook serving certificate');
          bundle = fresh;
        }
        // 409: another replica renewed it first; read theirs.
      } else {
        bundle = stored.bundle;
      }
    }
    // Trust first, serve second: the API server must accept the new CA before anyone presents it.
    await this.publishCaBundle(bundle.caBundlePem);
    if (this.currentBundle?.certPem !== bundle.certPem) {
      this.currentBundle = bundle;
      for (const l of this.listeners) l({ certPem: bundle.certPem, keyPem: bundle.keyPem });
    }
    return bundle;
  }

  private issue(now: Date, previousCaBundlePem: string | undefined): CertificateBundle {
    return issueBundle({
      service: this.options.service,
      namespace: this.options.namespace,
      now,
      validityMs: this.options.validityMs ?? 365 * 24 * 3600_000,
      ...(previousCaBundlePem ? { previousCaBundlePem } : {}),
    });
  }

  private async publishCaBundle(caBundlePem: string): Promise<void> {
    const targets: [WebhookConfigurationKind, string | undefined][] = [
      ['MutatingWebhookConfiguration', this.options.mutatingWebhookConfiguration],
      ['ValidatingWebhookConfiguration', this.options.validatingWebhookConfiguration],
    ];
    for (const [kind, name] of targets) {
      if (!name) continue;
      const result = await this.options.store.setCaBundle(kind, name, caBundlePem);
      if (result === 'patched') this.log(`wrote the caBundle into ${kind} ${name}`);
      // Not installed yet (or removed): nothing calls us through it; the next sync retries.
      if (result === 'missing') this.log(`${kind} ${name} does not exist; caBundle not written`);
    }
  }

  private log(line: string): void {
    this.options.log?.(line);
  }
}

// ---- the mounted mode ---------------------------------------------------------------------

/**
 * A certificate mounted from outside (cert-manager): `tls.crt` and `tls.key` in a folder,
 * re-read by polling. Polling the content, not fs.watch, because kubelet updates Secret volumes
 * by swapping a `..data` symlink, which file watchers miss or report inconsistently.
 */
export class CertDirectory {
  private last: ServingCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: ((cert: ServingCertificate) => void)[] = [];

  constructor(
    private readonly dir: string,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /** Reads the certificate; throws if the files are missing or do not hold a matching pair. */
  async load(): Promise<ServingCertificate> {
    const [certPem, keyPem] = await Promise.all([readFile(join(this.dir, 'tls.crt'), 'utf8'), readFile(join(this.dir, 'tls.key'), 'utf8')]);
    const cert = new X509Certificate(certPem);
    // kubelet writes both files in one atomic swap, but an operator copying files may not.
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error(`${this.dir}: tls.key does not belong to tls.crt`);
    this.last = { certPem, keyPem };
    return this.last;
  }

  onChange(listener: (cert: ServingCertificate) => void): void {
    this.listeners.push(listener);
  }

  /** Re-reads the files; tells the listeners if they changed. A half-written pair is skipped. */
  async check(): Promise<boolean> {
    const before = this.last;
    let now: ServingCertificate;
    try {
      now = await this.load();
    } catch (e) {
      this.log(`keeping the current certificate: ${(e as Error).message}`);
      return false;
    }
    if (before && before.certPem === now.certPem && before.keyPem === now.keyPem) return false;
    this.log(`loaded a new certificate from ${this.dir}`);
    for (const l of this.listeners) l(now);
    return true;
  }

  start(intervalMs: number): void {
    this.stop();
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
