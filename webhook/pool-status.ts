/**
 * Pool usage: Prometheus metrics for every pool (empty ones too) in every replica, and, on the
 * leader, each IPAddressPool's status (assigned/available per family, used, free), so that
 * `kubectl get ipaddresspools` shows USED and FREE. Writes are coalesced: at most one pass every
 * `everyMs`, and a pool whose status already says the same is not written.
 */
import { isKubeError, CONFIG_KINDS, type KubeApi, type Resource } from '../kube/client.js';
import type { Ledger } from './claims.js';

/** What the writer reports to metrics (the webhook's Metrics class satisfies it). */
export interface PoolMetrics {
  setPoolUsage(pool: string, used: number, total: number): void;
  removePool?(pool: string): void;
}

/** What the controller writes into an IPAddressPool's status (manifests/crds/metallb.io_ipaddresspools.yaml). */
export interface PoolStatus {
  assignedIPv4: number;
  assignedIPv6: number;
  availableIPv4: number;
  availableIPv6: number;
  used: number;
  free: string;
}

/** Counts beyond this (IPv6) saturate: a JSON number from JavaScript is exact only up to 2^53 - 1. */
const MAX_COUNT = BigInt(Number.MAX_SAFE_INTEGER);

function sameStatus(have: unknown, want: PoolStatus): boolean {
  if (!have || typeof have !== 'object') return false;
  const h = have as Record<string, unknown>;
  return (Object.keys(want) as (keyof PoolStatus)[]).every((k) => h[k] === want[k]);
}

export interface PoolStatusOptions {
  kube: KubeApi;
  ledger: Ledger;
  namespace: string;
  metrics?: PoolMetrics;
  /** Whether this replica writes statuses (the leader). */
  leading: () => boolean;
  /** Minimum time between two passes (default 500 ms). */
  everyMs?: number;
  log?: (line: string) => void;
}

export class PoolStatusWriter {
  /** IPAddressPool name -> its status as last seen or written (ConfigMap pools have no object). */
  private readonly objects = new Map<string, unknown>();
  private readonly reported = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private again = false;
  private last = 0;
  private stopped = false;
  private readonly log: (line: string) => void;

  constructor(private readonly options: PoolStatusOptions) {
    this.log = options.log ?? (() => {});
  }

  /** The IPAddressPool objects as listed (replaces what was known). */
  sync(items: readonly { metadata: { name?: string }; status?: unknown }[]): void {
    this.objects.clear();
    for (const o of items) this.objects.set(o.metadata.name ?? '', o.status);
    this.schedule();
  }

  /** One IPAddressPool as watched (undefined: deleted). */
  observe(name: string, status: unknown, deleted = false): void {
    if (deleted) this.objects.delete(name);
    else this.objects.set(name, status);
    this.schedule();
  }

  /** A pass soon: at once after a quiet spell, at most every `everyMs`. */
  schedule(): void {
    if (this.stopped) return;
    if (this.writing) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    const every = this.options.everyMs ?? 500;
    // A little delay even so: a burst of claim changes is written once.
    const wait = Math.max(20, this.last + every - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.last = Date.now();
      this.writing = this.pass()
        .catch((e: unknown) => this.log(`pool status: ${e instanceof Error ? e.message : String(e)}`))
        .finally(() => {
          this.writing = undefined;
          if (this.again) {
            this.again = false;
            this.schedule();
          }
        });
    }, wait);
  }

  /** Resolves when no pass is running. */
  idle(): Promise<void> {
    return this.writing ?? Promise.resolve();
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    return this.idle();
  }

  private async pass(): Promise<void> {
    const { ledger, metrics, kube, namespace } = this.options;
    const names = new Set(ledger.currentPools().map((p) => p.name));
    for (const name of this.reported) {
      if (names.has(name)) continue;
      metrics?.removePool?.(name);
      this.reported.delete(name);
    }
    const statuses = new Map<string, PoolStatus>();
    for (const name of names) {
      const u = ledger.allocator.usage(name);
      if (!u) continue;
      metrics?.setPoolUsage(name, Number(u.used), Number(u.size));
      this.reported.add(name);
      statuses.set(name, {
        assignedIPv4: Number(u.families.IPv4.used),
        assignedIPv6: Number(u.families.IPv6.used),
        availableIPv4: Number(u.families.IPv4.free),
        availableIPv6: Number(u.families.IPv6.free > MAX_COUNT ? MAX_COUNT : u.families.IPv6.free),
        used: Number(u.used),
        free: u.free.toString(),
      });
    }
    if (!this.options.leading()) return;
    for (const [name, status] of statuses) {
      if (this.stopped || !this.options.leading()) return;
      if (!this.objects.has(name)) continue; // from the ConfigMap: no object to write to
      if (sameStatus(this.objects.get(name), status)) continue;
      try {
        const written = await kube.patch(CONFIG_KINDS.IPAddressPool as Resource, name, namespace, { status }, { subresource: 'status' });
        if (this.objects.has(name)) this.objects.set(name, written.status);
      } catch (e) {
        if (!isKubeError(e, 404)) throw e;
      }
    }
  }
}
