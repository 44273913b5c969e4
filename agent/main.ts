/**
 * The node agent process (DaemonSet, one per node): `node dist/agent/main.js --node-name NODE
 * [--kubeconfig K] ...` (`--help` lists every flag; agent/flags.ts). Lines other programs may read
 * (one each, on stderr, after the time and level):
 *
 *   metrics listening on HOST:PORT
 *   ready
 *   stopped
 *
 * Exit codes: 0 after SIGTERM/SIGINT (answers stop, the membership is left so the next owner
 * takes over at once), 1 when it cannot start (API server unreachable, its Node missing, the
 * membership key unreadable or the membership unable to bind), 2 on bad flags.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { readFlags, UsageError, usage } from './flags.js';
import { describeError, makeLogger, type Logger } from './log.js';

// Everything else is imported after the flags are read: @kubernetes/client-node alone takes
// seconds to load on a busy node, and a typo in a flag should be answered at once.

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function hostPort(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** The membership key: the file's bytes (a trailing newline left out) or the environment's text. */
function readKey(source: { keyFile?: string; key?: string }): Buffer {
  let key: Buffer;
  if (source.keyFile !== undefined) {
    try {
      key = readFileSync(source.keyFile);
    } catch (e) {
      throw new Error(`cannot read the membership key ${source.keyFile}: ${describeError(e)}`, { cause: e });
    }
  } else key = Buffer.from(source.key ?? '', 'utf8');
  let end = key.length;
  while (end > 0 && (key[end - 1] === 0x0a || key[end - 1] === 0x0d)) end--;
  key = key.subarray(0, end);
  const where = source.keyFile ?? '$METALLB_ML_SECRET_KEY';
  if (key.length < 16) throw new Error(`the membership key in ${where} is ${key.length} bytes; it needs at least 16 (the controller makes one of 44)`);
  return key;
}

async function main(argv: string[]): Promise<void> {
  const flags = readFlags(argv);
  if (flags.help) {
    process.stdout.write(usage());
    return;
  }
  const log: Logger = makeLogger(flags.logLevel);
  if (flags.kubeconfig && !existsSync(flags.kubeconfig)) throw new UsageError(`cannot load the kubeconfig ${flags.kubeconfig}: no such file`);
  const key = flags.memberlist ? readKey(flags.memberlist) : undefined;

  const [{ KubeConfig }, { ClientKube }, { Agent }, { Metrics }, { NODES }, { Layer2Speaker }, { Membership }] = await Promise.all([
    import('@kubernetes/client-node'),
    import('../kube/client.js'),
    import('./agent.js'),
    import('./metrics.js'),
    import('./cluster.js'),
    import('./layer2/speaker.js'),
    import('./membership/index.js'),
  ]);
  const kc = new KubeConfig();
  try {
    if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
    else kc.loadFromDefault();
  } catch (e) {
    throw new UsageError(`cannot load the kubeconfig${flags.kubeconfig ? ` ${flags.kubeconfig}` : ''}: ${describeError(e)}`, { cause: e });
  }
  const server = kc.getCurrentCluster()?.server ?? '(no cluster in the kubeconfig)';
  const kube = new ClientKube(kc);

  // Fail fast, in one line, when the API server cannot be reached or our Node does not exist.
  try {
    const found = await kube.list(NODES, { fieldSelector: `metadata.name=${flags.nodeName}`, timeoutMs: 10_000 });
    if (found.items.length === 0) throw new Error(`node ${flags.nodeName} does not exist on ${server}; is --node-name (or NODE_NAME) right?`);
  } catch (e) {
    kube.close();
    if (e instanceof Error && e.message.startsWith('node ')) throw e;
    throw new Error(`cannot reach the API server ${server}: ${describeError(e)}`, { cause: e });
  }

  const metrics = new Metrics();
  const speaker = new Layer2Speaker({ metrics: metrics.registry, log: (line) => log.info(line) });
  const membership =
    flags.memberlist && key
      ? new Membership({
          nodeName: flags.nodeName,
          bindAddress: flags.memberlist.bindAddress,
          port: flags.memberlist.port,
          key,
          registry: metrics.registry,
          log: (line) => log.info(line),
        })
      : undefined;
  if (!membership) log.warn('no membership key: liveness comes from Node readiness alone (a dead node keeps its IPs until its Node is NotReady)');
  const agent = new Agent({
    kube,
    nodeName: flags.nodeName,
    namespace: flags.namespace,
    ...(flags.lbClass ? { loadBalancerClass: flags.lbClass } : {}),
    ...(flags.pod ? { owner: { apiVersion: 'v1', kind: 'Pod', name: flags.pod.name, uid: flags.pod.uid } } : {}),
    speaker,
    ...(membership && flags.memberlist
      ? { membership, membershipPort: flags.memberlist.port, membershipFamily: isIP(flags.memberlist.bindAddress) === 6 ? (6 as const) : (4 as const) }
      : {}),
    metrics,
    log,
  });

  // Probes and metrics from the start: /readyz says 503 until the first sync is done.
  const http = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
    else if (path === '/readyz') {
      if (agent.ready) res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      else res.writeHead(503, { 'Content-Type': 'text/plain' }).end('not ready: still reading the configuration and the cluster\n');
    } else if (path === '/metrics') {
      metrics.text().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else res.writeHead(404).end();
  });
  log.info(`metrics listening on ${hostPort(await listen(http, flags.metricsPort, flags.metricsBindAddress))}`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: stopping`);
    // Never hang: a stuck API call must not keep a terminating pod alive past its grace period.
    setTimeout(() => {
      log.error('stop timed out; exiting');
      process.exit(1);
    }, 8_000).unref();
    await agent.stop();
    await new Promise<void>((r) => http.close(() => r()));
    kube.close();
    log.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  try {
    await agent.start();
  } catch (e) {
    speaker.close();
    throw e;
  }
  if (stopping) return;
  log.info(`node ${flags.nodeName}: announcing ${agent.announcer.announcements.size} IP(s)`);
  log.info('ready');
}

// An exception nothing caught leaves the process in a state nobody reasoned about: log it in one
// line and exit non-zero, so that Kubernetes restarts the pod. A rejected promise nobody awaited
// is logged.
process.on('unhandledRejection', (e) => process.stderr.write(`${new Date().toISOString()} error unhandled rejection: ${describeError(e)}\n`));
process.on('uncaughtException', (e) => {
  process.stderr.write(`${new Date().toISOString()} error uncaught exception, exiting: ${describeError(e)}\n`);
  process.exit(70);
});

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`metallb-ts agent: ${e.message} (see --help)\n`);
    process.exit(2);
  }
  process.stderr.write(`metallb-ts agent: ${describeError(e)}\n`);
  process.exit(1);
});
