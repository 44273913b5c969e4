/**
 * What the admission bench's three parts say to each other (test/bench/admission.ts is the
 * client and the referee, admission-apiserver.ts the API server double in a worker thread,
 * admission-controller.ts one controller process), and the constants they share.
 */
import type { RequestOptions } from 'node:https';
import { KubeConfig, type RequestContext } from '@kubernetes/client-node';
import type { RequestCountRow } from '../apiserver/index.js';

export const NAMESPACE = 'metallb-system';
export const WEBHOOK_SERVICE = 'metallb-webhook-service';
export const MUTATING = 'metallb-mutating';
export const VALIDATING = 'metallb-validating';
export const LEASE = 'metallb-controller';

/**
 * User-Agents: every request a controller process sends (its own token) carries
 * `CONTROLLER_AGENT/<identity>`, every request of the bench's client (the admin's token)
 * `CLIENT_AGENT`, so the double's request counters attribute each request to its sender.
 */
export const CONTROLLER_AGENT = 'metallb-ts-bench-controller';
export const CLIENT_AGENT = 'metallb-ts-bench-client';

/** Addresses of the pool, per family: the RFC 2544 benchmarking range and a documentation /64. */
export const POOL_RANGES = { IPv4: '198.18.0.0/15', IPv6: '2001:db8::/64' } as const;
/** ClusterIPs: the double's default IPv4 service range is a /24, too small for 10,000 Services. */
export const SERVICE_CIDR_V4 = '10.96.0.0/12';

export type Family = 'IPv4' | 'IPv6';

/** Configuration of a controller process (JSON in the environment variable BENCH_CONTROLLER). */
export interface ControllerConfig {
  kubeconfigPath: string;
  identity: string;
  /** Capture the caller of every API request (slower: a stack trace per request). */
  trace: boolean;
  /** Profile from 'profile-start' to 'profile-stop' into this directory. */
  profileDir?: string;
  leaseDurationMs: number;
  renewMs: number;
}

/** One kind of API request the controller made, as its own KubeApi wrapper saw it. */
export interface CallStats {
  /** e.g. `create ipclaims`, `patch services/status`. */
  what: string;
  count: number;
  /** Latency of each call, ms (the whole round trip as the controller waits for it). */
  latencies: number[];
  /** Namespace of the object written or read ('' cluster-scoped or unknown) -> count. */
  byNamespace: Record<string, number>;
  /** With tracing: caller (function and source place) -> count. */
  callers: Record<string, number>;
}

export interface ControllerStats {
  identity: string;
  pid: number;
  /** process.cpuUsage(), µs, since the process started. */
  cpu: { user: number; system: number };
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
  /** Event loop utilisation over the last second. */
  elu: number;
  /** Event loop delay since the last reset (monitorEventLoopDelay, 10 ms resolution), ms: what a request arriving then waited before being read. */
  loopDelay: { p50: number; p99: number; max: number };
  leading: boolean;
  /** epoch ms of the election, if it leads. */
  ledAt?: number;
  /** API calls in flight, and epoch ms of the last one that started or ended. */
  inflight: number;
  lastCallAt: number;
  calls: CallStats[];
  /** Webhook handler time (observeAdmission) per route, ms. */
  handler: Record<string, number[]>;
  /** The whole HTTPS request at the webhook server, per path, ms. */
  request: Record<string, number[]>;
  verdicts: Record<string, number>;
  /** First log lines (errors the controller reported). */
  log: string[];
}

/** Main -> controller. */
export type ToController = { op: 'stats'; reset?: boolean } | { op: 'probe' } | { op: 'gc' } | { op: 'profile-start' } | { op: 'profile-stop'; name: string } | { op: 'stop' };

/** Controller -> main. */
export type FromController =
  | { op: 'ready'; port: number; at: number }
  | { op: 'leading'; at: number }
  | { op: 'stopped-leading'; at: number }
  | { op: 'stats'; stats: ControllerStats }
  /** Cheap enough to ask four times a second: what waiting for idle needs, nothing more. */
  | { op: 'probe'; elu: number; inflight: number; lastCallAt: number }
  | { op: 'gc'; memory: ControllerStats['memory'] }
  | { op: 'profile-started' }
  | { op: 'profile-stopped'; path: string }
  | { op: 'stopped' }
  | { op: 'failed'; error: string };

/** Main -> API server worker. */
export type ToApiServer = { op: 'route'; port: number } | { op: 'counts'; reset?: boolean } | { op: 'invariants' } | { op: 'stop' };

/** API server worker -> main. */
export type FromApiServer =
  | { op: 'ready'; kubeconfigPath: string; controllerKubeconfigPath: string }
  | { op: 'routed' }
  | { op: 'counts'; rows: RequestCountRow[]; total: number }
  | { op: 'invariants'; violations: string[]; services: number; claims: number }
  | { op: 'stopped' };

/** Wall clock with sub-millisecond resolution, comparable across the bench's processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A KubeConfig whose every request (client-node's API clients, its Watch, and ClientKube alike) carries this User-Agent. */
export class StampedKubeConfig extends KubeConfig {
  constructor(private readonly agent: string) {
    super();
  }

  override async applyToHTTPSOptions(opts: RequestOptions): Promise<void> {
    await super.applyToHTTPSOptions(opts);
    opts.headers = { ...(opts.headers ?? {}), 'User-Agent': this.agent };
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    context.setHeaderParam('User-Agent', this.agent);
  }
}
