/**
 * Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection: the
 * holder renews the lease every `renewMs`; another replica takes it over once it has seen the
 * same lease record unchanged for `leaseDurationMs` (measured on its own clock, so clock skew
 * between nodes does not matter). Writes are optimistic (resourceVersion), so two replicas can
 * never both win the same round.
 */
import { type Clock, systemClock } from './clock.js';
import { apiVersionOf, isKubeError, RESOURCES, type KubeApi, type KubeObject } from './client.js';

export { type Clock, systemClock } from './clock.js';

export interface LeaderElectionOptions {
  kube: KubeApi;
  namespace: string;
  /** Lease name (default metallb-ts-controller). */
  name?: string;
  /** This replica's identity (pod name). */
  identity: string;
  leaseDurationMs?: number;
  renewMs?: number;
  /** How often a follower tries (default renewMs / 2). */
  retryMs?: number;
  clock?: Clock;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log?: (line: string) => void;
}

/** RFC 3339 with microseconds, as the Lease's MicroTime fields. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** Runs the election loop; `leading` says whether this replica holds the lease now. */
export class LeaderElector {
  leading = false;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private stopped = true;
  private observed: { record: string; at: number } | undefined;
  private lastRenew = 0;
  private readonly name: string;
  private readonly durationMs: number;
  private readonly renewMs: number;
  private readonly retryMs: number;
  private readonly clock: Clock;

  constructor(private readonly options: LeaderElectionOptions) {
    this.name = options.name ?? 'metallb-ts-controller';
    this.durationMs = options.leaseDurationMs ?? 4000;
    this.renewMs = options.renewMs ?? 2000;
    this.retryMs = options.retryMs ?? Math.max(100, this.renewMs / 2);
    this.clock = options.clock ?? systemClock;
  }

  start(): void {
    this.stopped = false;
    this.inflight = this.tick();
  }

  /** Stops; with `release`, gives the lease up so another replica takes over at once. */
  async stop(release = true): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // A renewal still in flight would write the lease after our release (or make the release
    // meet 409 Conflict and leave the lease held): let it land first.
    await this.inflight;
    if (this.leading && release) await this.release();
    this.setLeading(false);
  }

  private async release(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const lease = await this.options.kube.get(RESOURCES.leases, this.name, this.options.namespace);
        const spec = (lease?.spec ?? {}) as LeaseSpec;
        if (lease && spec.holderIdentity === this.options.identity) {
          await this.options.kube.replace(RESOURCES.leases, { ...lease, spec: { ...spec, holderIdentity: '', leaseDurationSeconds: 1 } });
        }
        return;
      } catch (e) {
        if (isKubeError(e, 409) && attempt < 3) continue;
        this.options.log?.(`releasing the lease: ${String(e)}`);
        return;
      }
    }
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    if (leading) this.options.onStartedLeading();
    else this.options.onStoppedLeading();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    let won = false;
    try {
      won = await this.tryAcquireOrRenew();
    } catch (e) {
      this.options.log?.(`lease ${this.options.namespace}/${this.name}: ${String(e)}`);
    }
    if (this.stopped) return;
    const now = this.clock.now().getTime();
    if (won) this.lastRenew = now;
    // A leader that could not renew for a whole lease duration must assume someone else leads.
    this.setLeading(won || (this.leading && now - this.lastRenew < this.durationMs));
    this.timer = setTimeout(() => (this.inflight = this.tick()), this.leading ? this.renewMs : this.retryMs);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { kube, namespace, identity } = this.options;
    const now = this.clock.now();
    const seconds = Math.max(1, Math.ceil(this.durationMs / 1000));
    const lease = await kube.get(RESOURCES.leases, this.name, namespace);
    if (!lease) {
      const body: KubeObject = {
        apiVersion: apiVersionOf(RESOURCES.leases),
        kind: 'Lease',
        metadata: { name: this.name, namespace },
        spec: { holderIdentity: identity, leaseDurationSeconds: seconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
      };
      try {
        await kube.create(RESOURCES.leases, body);
        return true;
      } catch (e) {
        if (isKubeError(e, 409)) return false;
        throw e;
      }
    }
    const spec = (lease.spec ?? {}) as LeaseSpec;
    const record = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}|${spec.leaseDurationSeconds ?? ''}`;
    if (this.observed?.record !== record) this.observed = { record, at: now.getTime() };
    const mine = spec.holderIdentity === identity;
    const held = !!spec.holderIdentity && !mine;
    const durationMs = (spec.leaseDurationSeconds ?? seconds) * 1000;
    if (held && this.observed.at + durationMs > now.getTime()) return false;
    const next: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: seconds,
      acquireTime: mine ? (spec.acquireTime ?? microTime(now)) : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
    };
    try {
      await kube.replace(RESOURCES.leases, { ...lease, spec: next });
      return true;
    } catch (e) {
      if (isKubeError(e, 409)) return false;
      throw e;
    }
  }
}
