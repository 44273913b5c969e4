/**
 * The controller process: serving certificate, admission webhooks (HTTPS), metrics, claims
 * ledger, configuration follower and the leader-elected reconcile loop, wired together.
 *
 * `node dist/webhook/main.js [--kubeconfig K] [--namespace metallb-system] [--bind-address 0.0.0.0]
 *   [--webhook-port 9443] [--metrics-port 7472] ...` (`--help` lists every flag). Port 0 means any
 * free port. Lines other programs may read (one each, on stderr, after the timestamp):
 *
 *   webhook listening on HOST:PORT
 *   metrics listening on HOST:PORT
 *   ready
 *   leader election: IDENTITY started leading | IDENTITY stopped leading
 *   stopped
 *
 * Exit codes: 0 after SIGTERM/SIGINT (the lease is released, so another replica takes over at
 * once), 1 when it cannot start (API server unreachable, ...), 2 on bad flags.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { DEFAULT_NAMESPACE } from '../kube/names.js';
import type { ServingCertificate } from './certs.js';
import type { AdmissionHandler } from './review.js';

// Everything else is imported after the flags are read: @kubernetes/client-node alone takes
// seconds to load on a busy node, and a typo in a flag should be answered at once.

const OPTIONS = {
  kubeconfig: { type: 'string', help: 'kubeconfig file (default: in-cluster, then $KUBECONFIG / ~/.kube/config)' },
  namespace: { type: 'string', help: 'our namespace: configuration, lease, certificate Secret (default $POD_NAMESPACE or metallb-system)' },
  identity: { type: 'string', help: 'this replica in the lease and in events (default $POD_NAME or the host name)' },
  'bind-address': { type: 'string', default: '0.0.0.0', help: 'address the webhook and metrics servers listen on' },
  'webhook-port': { type: 'string', default: '9443', help: 'HTTPS port of the admission webhooks, /healthz and /readyz (0: any free port)' },
  'metrics-port': { type: 'string', default: '7472', help: 'HTTP port of /metrics (0: any free port)' },
  'lb-class': { type: 'string', help: 'spec.loadBalancerClass we answer to (default: Services without one)' },
  'cert-dir': { type: 'string', help: 'use tls.crt/tls.key mounted here (cert-manager) instead of a self-made certificate' },
  'webhook-service': { type: 'string', default: 'metallb-webhook-service', help: 'the webhook Service (names in the certificate)' },
  'cert-secret': { type: 'string', default: 'metallb-webhook-cert', help: 'Secret holding the shared self-made certificate' },
  'mutating-webhook-configuration': { type: 'string', default: 'metallb-mutating', help: 'MutatingWebhookConfiguration whose caBundle we write' },
  'validating-webhook-configuration': { type: 'string', default: 'metallb-validating', help: 'ValidatingWebhookConfiguration whose caBundle we write' },
  lease: { type: 'string', default: 'metallb-controller', help: 'coordination.k8s.io Lease for leader election' },
  'lease-duration': { type: 'string', default: '4s', help: 'how long a silent leader keeps the lease' },
  'lease-renew': { type: 'string', default: '2s', help: 'how often the leader renews' },
  help: { type: 'boolean', short: 'h', help: 'print this help' },
} as const;

/** A flag the user got wrong: reported in one line, exit 2. */
class UsageError extends Error {}

const log = (line: string): void => {
  process.stderr.write(`${new Date().toISOString()} ${line.replace(/\s*\n\s*/g, ' ')}\n`);
};

/** One line, whatever was thrown (client-node errors carry the API's Status in `body`). */
function describe(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return describe(e.errors[0]);
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  const code = (e as { code?: unknown }).code;
  let text = e.message || e.name;
  if (typeof code === 'string' && !text.includes(code)) text = `${code}: ${text}`;
  if (cause !== undefined && cause !== e) text += ` (${describe(cause)})`;
  return text.replace(/\s+/g, ' ').trim();
}

function port(flag: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new UsageError(`--${flag} must be a port number 0-65535 (0: any free port), got "${value}"`);
  return Number(value);
}

function duration(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value);
  if (!m) throw new UsageError(`--${flag} must be a duration such as 500ms, 4s or 1m, got "${value}"`);
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  if (ms <= 0) throw new UsageError(`--${flag} must be positive`);
  return ms;
}

function usage(): string {
  const lines = Object.entries(OPTIONS).map(([name, o]) => {
    const value = o.type === 'string' ? ' VALUE' : '';
    const dflt = 'default' in o ? ` (default ${String(o.default)})` : '';
    return `  --${name}${value}\n      ${o.help}${dflt}`;
  });
  return `usage: node dist/webhook/main.js [flags]\n\nThe metallb-ts controller: admission webhooks and the reconcile loop.\n\n${lines.join('\n')}\n`;
}

function readFlags(argv: string[]) {
  let values;
  try {
    const options = Object.fromEntries(
      Object.entries(OPTIONS).map(([k, o]) => [k, { type: o.type, ...('short' in o ? { short: o.short } : {}), ...('default' in o ? { default: o.default } : {}) }]),
    );
    ({ values } = parseArgs({ args: argv, options: options as { [K in keyof typeof OPTIONS]: { type: (typeof OPTIONS)[K]['type'] } }, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\s+/g, ' ').replace(/\. To specify .*$/, ''), { cause: e });
  }
  const v = values as Partial<Record<keyof typeof OPTIONS, string | boolean>>;
  const str = (k: keyof typeof OPTIONS): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const required = (k: keyof typeof OPTIONS): string => {
    const s = str(k);
    if (s === undefined || s === '') throw new UsageError(`--${k} must not be empty`);
    return s;
  };
  const leaseDurationMs = duration('lease-duration', required('lease-duration'));
  const renewMs = duration('lease-renew', required('lease-renew'));
  if (renewMs >= leaseDurationMs) throw new UsageError('--lease-renew must be shorter than --lease-duration');
  return {
    help: v.help === true,
    kubeconfig: str('kubeconfig'),
    namespace: str('namespace') ?? process.env.POD_NAMESPACE ?? DEFAULT_NAMESPACE,
    identity: str('identity') ?? process.env.POD_NAME ?? hostname(),
    bindAddress: required('bind-address'),
    webhookPort: port('webhook-port', required('webhook-port')),
    metricsPort: port('metrics-port', required('metrics-port')),
    lbClass: str('lb-class'),
    certDir: str('cert-dir'),
    webhookService: required('webhook-service'),
    certSecret: required('cert-secret'),
    mutating: required('mutating-webhook-configuration'),
    validating: required('validating-webhook-configuration'),
    lease: required('lease'),
    leaseDurationMs,
    renewMs,
  };
}

function listen(server: Server, portNumber: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(portNumber, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function hostPort(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

async function main(argv: string[]): Promise<void> {
  const flags = readFlags(argv);
  if (flags.help) {
    process.stdout.write(usage());
    return;
  }
  const { namespace, identity } = flags;
  // Checked before the slow imports below, so the most common mistake is answered at once.
  if (flags.kubeconfig && !existsSync(flags.kubeconfig)) throw new UsageError(`cannot load the kubeconfig ${flags.kubeconfig}: no such file`);
  const [
    { AdmissionregistrationV1Api, CoreV1Api, KubeConfig },
    { CertDirectory, CertManager, KubeCertStore, systemClock },
    { Ledger },
    { ConfigAdmission },
    { Controller },
    { ClientKube, RESOURCES },
    { LeaderElector },
    { Metrics },
    { NamespaceLabels },
    { startWebhookServer },
    { ServiceAdmission },
    { ExternalIPAdmission },
    { CONTROLLER_SERVICE_ACCOUNT, IPClaimAdmission, serviceAccountUser },
    { ensureMemberlistSecret, MEMBERLIST_SECRET },
  ] = await Promise.all([
    import('@kubernetes/client-node'),
    import('./certs.js'),
    import('./claims.js'),
    import('./config-admission.js'),
    import('./controller.js'),
    import('../kube/client.js'),
    import('../kube/leader.js'),
    import('./metrics.js'),
    import('./namespaces.js'),
    import('./server.js'),
    import('./services.js'),
    import('./external-ips.js'),
    import('./ipclaims-admission.js'),
    import('../kube/memberlist.js'),
  ]);
  const kc = new KubeConfig();
  try {
    if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
    else kc.loadFromDefault();
  } catch (e) {
    throw new UsageError(`cannot load the kubeconfig${flags.kubeconfig ? ` ${flags.kubeconfig}` : ''}: ${describe(e)}`, { cause: e });
  }
  const server = kc.getCurrentCluster()?.server ?? '(no cluster in the kubeconfig)';
  const kube = new ClientKube(kc);
  const metrics = new Metrics();

  // Fail fast, in one line, when the API server cannot be reached at all.
  try {
    await kc.makeApiClient(CoreV1Api).readNamespace({ name: namespace });
  } catch (e) {
    const status = (e as { code?: unknown }).code;
    if (status === 404) throw new Error(`namespace ${namespace} does not exist on ${server}; install the manifests first`, { cause: e });
    throw new Error(`cannot reach the API server ${server}: ${describe(e)}`, { cause: e });
  }

  // The node agents' gossip key: static YAML cannot hold a random one, so the controller makes
  // it once per install (as MetalLB's); the agents mount it and wait for it. Retried, never fatal.
  const ensureAgentKey = (delayMs: number): void => {
    ensureMemberlistSecret(kube, namespace).then(
      (created) => {
        if (created) log(`created the Secret ${namespace}/${MEMBERLIST_SECRET} (the node agents' membership key)`);
      },
      (e: unknown) => {
        log(`creating the Secret ${namespace}/${MEMBERLIST_SECRET} (the node agents' membership key): ${describe(e)}; retrying`);
        setTimeout(() => ensureAgentKey(Math.min(delayMs * 2, 300_000)), delayMs).unref();
      },
    );
  };
  ensureAgentKey(1000);

  // Certificate: mounted from outside, or made and shared through a Secret.
  let certificate: ServingCertificate;
  let onCert: (listener: (c: ServingCertificate) => void) => void;
  let stopCerts: () => void;
  if (flags.certDir) {
    const dir = new CertDirectory(flags.certDir, log);
    certificate = await dir.load();
    onCert = (l) => dir.onChange(l);
    dir.start(60_000);
    stopCerts = () => dir.stop();
  } else {
    const store = new KubeCertStore(kc.makeApiClient(CoreV1Api), kc.makeApiClient(AdmissionregistrationV1Api), namespace, flags.certSecret);
    const certs = new CertManager({
      store,
      clock: systemClock,
      service: flags.webhookService,
      namespace,
      mutatingWebhookConfiguration: flags.mutating,
      validatingWebhookConfiguration: flags.validating,
      log,
    });
    certificate = await certs.sync();
    onCert = (l) => certs.onChange(l);
    // Hourly: renews well before expiry, and re-writes a caBundle someone reset (kubectl apply).
    certs.start(60 * 60_000);
    stopCerts = () => certs.stop();
  }

  const ledger = new Ledger(kube, [], { log });
  // Namespace labels from a watch, for the admission handlers and the loop alike: an admission
  // call costs no namespace GET.
  const namespaceLabels = new NamespaceLabels(kube, { log });
  const controller = new Controller({
    kube,
    ledger,
    namespace,
    namespaceLabels,
    ...(flags.lbClass ? { loadBalancerClass: flags.lbClass } : {}),
    metrics,
    instance: identity,
    log,
  });
  // The family the API server gives a Service that sets no ipFamilies: the cluster's primary
  // service CIDR's, which the `kubernetes` Service shows.
  let defaultFamily: 'IPv4' | 'IPv6' = 'IPv4';
  try {
    const api = await kube.get(RESOURCES.services, 'kubernetes', 'default');
    const fam = ((api?.spec as { ipFamilies?: unknown } | undefined)?.ipFamilies as unknown[] | undefined)?.[0];
    if (fam === 'IPv6') defaultFamily = 'IPv6';
  } catch (e) {
    log(`reading default/kubernetes for the cluster's default IP family (assuming IPv4): ${describe(e)}`);
  }
  const services = new ServiceAdmission({
    ledger,
    namespaces: namespaceLabels,
    ...(flags.lbClass ? { loadBalancerClass: flags.lbClass } : {}),
    metrics,
    defaultFamily: () => defaultFamily,
  });
  const config = new ConfigAdmission({ kube, ledger, namespace });
  const externalIPs = new ExternalIPAdmission({ ledger, namespaces: namespaceLabels });
  const ipClaims = new IPClaimAdmission({ controllerUser: serviceAccountUser(namespace, CONTROLLER_SERVICE_ACCOUNT) });

  // Serve (health probes) at once; admit only once the claims and the configuration are loaded.
  // Before that an answer would come from empty pools, so the handlers fail (HTTP 500) and the
  // webhook's failurePolicy decides: Services are admitted and the loop assigns them later.
  let ready = false;
  const whenReady =
    (handler: AdmissionHandler): AdmissionHandler =>
    (request) => {
      if (!ready) return Promise.reject(new Error('not ready: still loading the claims and the configuration'));
      return handler(request);
    };
  const webhook = await startWebhookServer({
    certificate,
    handlers: {
      mutateServices: whenReady(services.mutate),
      validateServices: whenReady(services.validate),
      validateConfig: whenReady(config.validate),
      validateExternalIPs: whenReady(externalIPs.validate),
      validateIPClaims: ipClaims.validate, // needs no state: answers from the start
    },
    ready: () => ready,
    registry: metrics.registry,
    observeAdmission: (h, s, a) => metrics.observeAdmission(h, s, a),
    port: flags.webhookPort,
    host: flags.bindAddress,
    log,
  });
  log(`webhook listening on ${hostPort(webhook.server.address() as AddressInfo)}`);
  onCert((c) => webhook.setCertificate(c));

  const metricsServer = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  log(`metrics listening on ${hostPort(await listen(metricsServer, flags.metricsPort, flags.bindAddress))}`);

  await Promise.all([ledger.start(), namespaceLabels.start()]);
  await controller.start();
  ready = true;
  log('ready');

  const elector = new LeaderElector({
    kube,
    namespace,
    name: flags.lease,
    identity,
    leaseDurationMs: flags.leaseDurationMs,
    renewMs: flags.renewMs,
    onStartedLeading: () => {
      log(`leader election: ${identity} started leading`);
      controller.setLeading(true);
    },
    onStoppedLeading: () => {
      log(`leader election: ${identity} stopped leading`);
      controller.setLeading(false);
    },
    log,
  });
  elector.start();

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    // Never hang: a stuck API call must not keep a terminating pod alive past its grace period.
    setTimeout(() => {
      log('stop timed out; exiting');
      process.exit(1);
    }, 10_000).unref();
    ready = false;
    stopCerts();
    // Finish the admissions in flight, then the loop's current pass, and only then give the
    // lease up, so the next leader never runs alongside us.
    await webhook.close();
    await controller.stop();
    await elector.stop(true);
    ledger.stop();
    namespaceLabels.stop();
    await new Promise<void>((r) => metricsServer.close(() => r()));
    kube.close();
    log('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

// An exception nothing caught leaves the process in a state nobody reasoned about: log it in one
// line and exit non-zero, so that Kubernetes restarts the pod (claims and the recorded
// configuration make a restart lose nothing). A rejected promise nobody awaited is logged.
process.on('unhandledRejection', (e) => log(`unhandled rejection: ${describe(e)}`));
process.on('uncaughtException', (e) => {
  log(`uncaught exception, exiting: ${describe(e)}`);
  process.exit(70);
});

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`metallb-ts controller: ${e.message} (see --help)\n`);
    process.exit(2);
  }
  process.stderr.write(`metallb-ts controller: ${describe(e)}\n`);
  process.exit(1);
});
