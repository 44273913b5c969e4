/**
 * The controller process: serving certificate, admission webhooks (HTTPS), metrics, claims
 * ledger, configuration follower and the leader-elected reconcile loop, wired together.
 */
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { CertDirectory, CertManager, KubeCertStore, systemClock } from './certs.js';
import { Ledger } from './claims.js';
import { ConfigAdmission } from './config-admission.js';
import { Controller } from './controller.js';
import { ClientKube } from './kube.js';
import { LeaderElector } from './leader.js';
import { Metrics } from './metrics.js';
import { startWebhookServer } from './server.js';
import { ServiceAdmission } from './services.js';

async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    options: {
      namespace: { type: 'string', default: process.env.POD_NAMESPACE ?? 'metallb-system' },
      'lb-class': { type: 'string' },
      'cert-dir': { type: 'string' },
      'webhook-port': { type: 'string', default: '9443' },
      'metrics-port': { type: 'string', default: '7472' },
      kubeconfig: { type: 'string' },
      'webhook-service': { type: 'string', default: 'metallb-webhook-service' },
      'cert-secret': { type: 'string', default: 'metallb-webhook-cert' },
      'mutating-webhook-configuration': { type: 'string', default: 'metallb-mutating' },
      'validating-webhook-configuration': { type: 'string', default: 'metallb-validating' },
      lease: { type: 'string', default: 'metallb-controller' },
    },
  });
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const namespace = flags.namespace;
  const kc = new KubeConfig();
  if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
  else kc.loadFromDefault();
  const kube = new ClientKube(kc);
  const metrics = new Metrics();
  const identity = process.env.POD_NAME ?? hostname();

  // Certificate: mounted from outside, or made and shared through a Secret.
  let certificate;
  let onCert: (listener: (c: { certPem: string; keyPem: string }) => void) => void;
  if (flags['cert-dir']) {
    const dir = new CertDirectory(flags['cert-dir'], log);
    certificate = await dir.load();
    onCert = (l) => dir.onChange(l);
    dir.start(60_000);
  } else {
    const store = new KubeCertStore(kc.makeApiClient(CoreV1Api), kc.makeApiClient(AdmissionregistrationV1Api), namespace, flags['cert-secret']);
    const certs = new CertManager({
      store,
      clock: systemClock,
      service: flags['webhook-service'],
      namespace,
      mutatingWebhookConfiguration: flags['mutating-webhook-configuration'],
      validatingWebhookConfiguration: flags['validating-webhook-configuration'],
      log,
    });
    certificate = await certs.sync();
    onCert = (l) => certs.onChange(l);
    certs.start(60 * 60_000);
  }

  const ledger = new Ledger(kube, [], { log });
  await ledger.start();
  const controller = new Controller({
    kube,
    ledger,
    namespace,
    ...(flags['lb-class'] ? { loadBalancerClass: flags['lb-class'] } : {}),
    metrics,
    instance: identity,
    log,
  });
  await controller.start();
  const services = new ServiceAdmission({ ledger, kube, ...(flags['lb-class'] ? { loadBalancerClass: flags['lb-class'] } : {}), metrics });
  const config = new ConfigAdmission({ kube, ledger, namespace });
  const server = await startWebhookServer({
    certificate,
    handlers: { mutateServices: services.mutate, validateServices: services.validate, validateConfig: config.validate },
    registry: metrics.registry,
    observeAdmission: (h, s, a) => metrics.observeAdmission(h, s, a),
    port: Number(flags['webhook-port']),
    log,
  });
  onCert((c) => server.setCertificate(c));

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
  metricsServer.listen(Number(flags['metrics-port']));

  const elector = new LeaderElector({
    kube,
    namespace,
    name: flags.lease,
    identity,
    onStartedLeading: () => {
      log(`${identity} leads`);
      controller.setLeading(true);
    },
    onStoppedLeading: () => {
      log(`${identity} no longer leads`);
      controller.setLeading(false);
    },
    log,
  });
  elector.start();

  const shutdown = async () => {
    await elector.stop(true);
    await controller.stop();
    ledger.stop();
    await server.close();
    metricsServer.close();
    kube.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
}

main().catch((e: unknown) => {
  process.stderr.write(`metallb-ts controller: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
