/**
 * What the end-to-end tests share: an API server double with the project's manifests installed
 * (namespace, CRDs, RBAC, webhook configurations; not the Deployment, whose pods are the
 * controller processes the tests spawn), and real controller processes (`dist/webhook/main.js`)
 * behind the webhook Service, which the double reaches round-robin across the replicas that are
 * ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, type CoreV1Api } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { startApiServer, type ApiServer, type KubeObject, type UserInfo } from '../apiserver/index.js';
import { writeKubeconfig } from '../apiserver/kubeconfig.js';
import { eventually, kubeConfigFor } from '../apiserver/testing.js';

/** The repository, whether this file runs from test/e2e (jest) or dist/test/e2e (compiled). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url)).replace(/dist\/$/, '');
export const MAIN = join(repoRoot, 'dist/webhook/main.js');
export const NAMESPACE = 'metallb-system';
export const WEBHOOK_SERVICE = 'metallb-webhook-service';

/**
 * Who the controller processes are: the controller's ServiceAccount (manifests/rbac), as in a
 * cluster, so that webhooks can tell their writes from the tests' (which are the admin's).
 */
export const CONTROLLER_USER: UserInfo = {
  username: `system:serviceaccount:${NAMESPACE}:controller`,
  groups: ['system:serviceaccounts', `system:serviceaccounts:${NAMESPACE}`, 'system:authenticated'],
};

/** Who the node agents are: the agent's ServiceAccount (manifests/rbac). */
export const AGENT_USER: UserInfo = {
  username: `system:serviceaccount:${NAMESPACE}:agent`,
  groups: ['system:serviceaccounts', `system:serviceaccounts:${NAMESPACE}`, 'system:authenticated'],
};

/** Manifest files installed, in order (the Deployment and its Service are left out on purpose). */
const MANIFESTS = ['namespace.yaml', 'crds', 'rbac', 'webhooks'];

/** Every object of the manifests above, namespaced ones placed in metallb-system as kustomize would. */
export function manifestObjects(): KubeObject[] {
  const files: string[] = [];
  for (const entry of MANIFESTS) {
    const path = join(repoRoot, 'manifests', entry);
    if (entry.endsWith('.yaml')) files.push(path);
    else
      files.push(
        ...readdirSync(path)
          .filter((f) => f.endsWith('.yaml'))
          .sort()
          .map((f) => join(path, f)),
      );
  }
  const objects: KubeObject[] = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(readFileSync(f, 'utf8'))) {
      const o = doc.toJS() as KubeObject | null;
      if (!o) continue;
      if (['ServiceAccount', 'Role', 'RoleBinding', 'Secret', 'ConfigMap'].includes(o.kind ?? '')) o.metadata.namespace ??= NAMESPACE;
      objects.push(o);
    }
  }
  const kinds = new Set(objects.map((o) => o.kind));
  for (const k of ['Namespace', 'CustomResourceDefinition', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'ClusterRole']) {
    if (!kinds.has(k)) throw new Error(`no ${k} found in the manifests (${files.length} files read)`);
  }
  return objects;
}

/**
 * A child process of a test whose output is read line by line as it comes (`line`), with waits
 * on what the lines said (`waitUntil`). The controller and agent processes build on it.
 */
export class WatchedProcess {
  /** Everything it wrote to stderr and stdout. */
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitCode: number | null | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    /** How it is named in messages, e.g. `controller-1` or `agent node-2`. */
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitedNow();
        this.notify();
        resolve({ code, signal });
      });
    });
    let partial = '';
    const onData = (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.output += `${line}\n`;
        this.line(line);
        this.notify();
      }
    };
    this.child.stderr?.on('data', onData);
    this.child.stdout?.on('data', onData);
  }

  /** One line of its output (after it is added to `output`). */
  protected line(_line: string): void {}

  /** It has exited (before the waiters are told). */
  protected exitedNow(): void {}

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  /** Resolves when `check` holds, fails when the process exits first or after timeoutMs. */
  waitUntil(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(test);
      };
      const test = () => {
        if (check()) {
          done();
          resolve();
        } else if (!this.alive) {
          done();
          reject(new Error(`${this.label} exited (${String(this.exitCode)}) before ${what}:\n${this.output}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: timed out waiting for ${what}:\n${this.output}`));
      }, timeoutMs);
      this.waiters.add(test);
      test();
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.alive) this.child.kill(signal);
  }
}

/** One controller process. */
export class ControllerProcess extends WatchedProcess {
  webhookPort: number | undefined;
  metricsPort: number | undefined;
  ready = false;
  leading = false;
  /** When it last logged that it started leading (Date.now()). */
  ledAt: number | undefined;

  constructor(
    readonly identity: string,
    args: string[],
  ) {
    super(identity, spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } }));
  }

  protected override exitedNow(): void {
    this.ready = false;
    this.leading = false;
  }

  protected override line(line: string): void {
    if (process.env.E2E_VERBOSE) process.stderr.write(`[${this.identity}] ${line}\n`);
    let m: RegExpExecArray | null;
    if ((m = /webhook listening on .*:(\d+)$/.exec(line))) this.webhookPort = Number(m[1]);
    if ((m = /metrics listening on .*:(\d+)$/.exec(line))) this.metricsPort = Number(m[1]);
    if (/ ready$/.test(line)) this.ready = true;
    if (/leader election: \S+ started leading$/.test(line)) {
      this.leading = true;
      this.ledAt = Date.now();
    }
    if (/leader election: \S+ stopped leading$/.test(line)) this.leading = false;
  }
}

/** The double, the installed manifests and the controller processes a test started. */
export class E2ECluster {
  readonly replicas: ControllerProcess[] = [];
  private next = 0;
  private counter = 0;

  private constructor(
    readonly api: ApiServer,
    /** The kubeconfig of the controller processes: authenticates as CONTROLLER_USER. */
    readonly controllerKubeconfigPath: string,
    private readonly agentToken: string,
  ) {}

  /**
   * Writes a kubeconfig for node agents (authenticates as AGENT_USER) and returns its path;
   * `server` is where they reach the double (the lab's agents: `https://198.51.100.1:PORT`).
   */
  async agentKubeconfig(server: string = this.api.url): Promise<string> {
    const path = join(this.api.dir, `agent-${new URL(server).hostname.replace(/[^0-9a-z.]/gi, '_')}.kubeconfig`);
    await writeKubeconfig(path, { server, token: this.agentToken, ...(this.api.caPem ? { caPem: this.api.caPem } : {}) });
    return path;
  }

  static async start(options: { serviceCidr?: string; alsoListenOn?: string[] } = {}): Promise<E2ECluster> {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
    const ref: { cluster?: E2ECluster } = {};
    const controllerToken = randomBytes(24).toString('hex');
    const agentToken = randomBytes(24).toString('hex');
    const api = await startApiServer({
      users: { [controllerToken]: CONTROLLER_USER, [agentToken]: AGENT_USER },
      // The webhook Service's endpoints: the replicas that are ready, round-robin, as kube-proxy would.
      resolveService: (ns, name, port) => (ns === NAMESPACE && name === WEBHOOK_SERVICE && port === 443 ? ref.cluster?.endpoint() : undefined),
      ...(options.serviceCidr ? { serviceNetwork: { ipv4Cidr: options.serviceCidr } } : {}),
      ...(options.alsoListenOn ? { alsoListenOn: options.alsoListenOn } : {}),
    });
    const controllerKubeconfigPath = join(api.dir, 'controller.kubeconfig');
    const cluster = new E2ECluster(api, controllerKubeconfigPath, agentToken);
    ref.cluster = cluster;
    try {
      await writeKubeconfig(controllerKubeconfigPath, { server: api.url, token: controllerToken, ...(api.caPem ? { caPem: api.caPem } : {}) });
      for (const o of manifestObjects()) await api.store.create(o);
      await api.settle();
    } catch (e) {
      await api.stop();
      throw e;
    }
    return cluster;
  }

  private endpoint(): { host: string; port: number } | undefined {
    const serving = this.replicas.filter((r) => r.alive && r.ready && r.webhookPort !== undefined);
    if (serving.length === 0) return undefined;
    const r = serving[this.next++ % serving.length] as ControllerProcess;
    return { host: '127.0.0.1', port: r.webhookPort as number };
  }

  kubeConfig(): KubeConfig {
    return kubeConfigFor(this.api);
  }

  /** Starts a controller process (fast lease timings unless overridden) and waits until it is ready. */
  async startController(extra: string[] = [], options: { identity?: string; wait?: boolean } = {}): Promise<ControllerProcess> {
    const identity = options.identity ?? `controller-${++this.counter}`;
    const args = [
      `--kubeconfig=${this.controllerKubeconfigPath}`,
      `--namespace=${NAMESPACE}`,
      `--identity=${identity}`,
      '--bind-address=127.0.0.1',
      '--webhook-port=0',
      '--metrics-port=0',
      '--lease-duration=2s',
      '--lease-renew=500ms',
      ...extra,
    ];
    const p = new ControllerProcess(identity, args);
    this.replicas.push(p);
    if (options.wait ?? true) await p.waitUntil(() => p.ready, 'ready');
    return p;
  }

  /** The replica that leads now (waits for one). */
  async leader(timeoutMs = 10_000): Promise<ControllerProcess> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = this.replicas.find((r) => r.alive && r.leading);
      if (l) return l;
      if (Date.now() > deadline) throw new Error(`no leader:\n${this.replicas.map((r) => `[${r.identity}]\n${r.output}`).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops every replica (SIGTERM, then SIGKILL after 5 s) and the double. Never throws. */
  async stop(): Promise<void> {
    await stopAll(this.replicas);
    await this.api.stop().catch(() => {});
  }
}

/**
 * Waits until the webhook allocates from `pool` (a server-side dry-run create of a Service in
 * `namespace` comes back with an IP from it): configuration reaches the replicas through a
 * watch, a few milliseconds after it is written.
 */
export async function waitForPool(core: CoreV1Api, namespace: string, pool: string, timeoutMs = 5000): Promise<void> {
  await eventually(
    async () => {
      const s = await core.createNamespacedService({
        namespace,
        dryRun: 'All',
        body: lbService('dry-run-probe', namespace, { annotations: { 'metallb.io/address-pool': pool } }),
      });
      return s.metadata?.annotations?.[ASSIGNED_POOL] === pool;
    },
    timeoutMs,
    `the webhook to allocate from pool ${pool}`,
  );
}

/** Stops the processes: SIGTERM, SIGKILL after 5 s. */
export async function stopAll(processes: ControllerProcess[]): Promise<void> {
  await Promise.all(
    processes.map(async (p) => {
      if (!p.alive) return;
      p.kill('SIGTERM');
      const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
      await p.exited;
      clearTimeout(timer);
    }),
  );
}

/** A LoadBalancer Service. */
export function lbService(name: string, namespace: string, extra: { annotations?: Record<string, string>; spec?: Record<string, unknown> } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], ...(extra.spec ?? {}) },
  };
}

export const ASSIGNED_IPS = 'metallb.io/assigned-ips';
export const ASSIGNED_POOL = 'metallb.io/ip-allocated-from-pool';

/** Ingress IPs of a Service in status. */
export function ingressIPs(svc: { status?: { loadBalancer?: { ingress?: { ip?: string }[] } } }): string[] {
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '').filter((ip) => ip !== '');
}

/** The nearest percentile of sorted numbers. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}
