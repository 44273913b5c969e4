/**
 * Releases claims whose holder is gone or never came, on the leader only:
 *
 * - a holder whose Service was stored (UID recorded in the claim, or its deletion seen by this
 *   process) and is gone: released at once;
 * - a holder never bound (admitted, then refused later in the chain) and a reservation that no
 *   stored Service carries (a refused update, a generateName create that never happened):
 *   released once this process has seen it waiting for longer than the grace period, measured
 *   on its own monotonic clock (never the server's creationTimestamp against our clock);
 * - a reservation a stored Service carries, and a holder whose Service was re-created or turned
 *   away from us: handed to the reconcile loop (`enqueue`).
 *
 * Incremental: it looks only at holders it was told about (claim changes, Service deletions) and
 * at the ones already waiting; a full pass runs on `sweep()` (taking the lead, the periodic
 * resync). A create costs O(1) here, not a walk over every claim.
 */
import { serviceKey } from '../core/allocator/index.js';
import type { Clock } from '../kube/clock.js';
import { holderKey, isReservationKey, type ClaimHolder, type Ledger } from './claims.js';

/** What the reaper needs to know of the Services the loop sees. */
export interface ReaperView {
  /** The stored Service's UID and whether it is ours, or undefined when no such Service is stored. */
  service(key: string): { uid?: string; ours: boolean } | undefined;
  /** The key of the stored Service whose `metallb.io/reservation` is this reservation key, if any. */
  reservationOwner(reservationKey: string): string | undefined;
  /** Whether a worker has the Service or will have it soon (then the reaper lets it finish). */
  busy(key: string): boolean;
  enqueue(key: string): void;
}

export interface ReaperOptions {
  ledger: Ledger;
  view: ReaperView;
  clock: Clock;
  /** How long a holder may wait for its Service (default 30 s). */
  graceMs?: number;
  log?: (line: string) => void;
}

export class ClaimReaper {
  /** Holders to look at in the next pass. */
  private readonly pending = new Set<string>();
  /** Holders without a stored Service, and since when (monotonic ms) this process saw them so. */
  private readonly waitingSince = new Map<string, number>();
  /**
   * Holders whose stored Service this process saw deleted: what a UID in the claim would say
   * ("this Service existed"), without a claim write per create to record it. Lost on restart,
   * when such a holder falls back to the grace period.
   */
  private readonly deletedStored = new Set<string>();
  private full = false;
  private readonly graceMs: number;
  private readonly log: (line: string) => void;

  constructor(private readonly options: ReaperOptions) {
    this.graceMs = options.graceMs ?? 30_000;
    this.log = options.log ?? (() => {});
  }

  /** Holders to look at in the next pass. */
  note(keys: Iterable<string>): void {
    for (const k of keys) this.pending.add(k);
  }

  /** The loop saw this Service deleted from the store: its claims go at the next pass, without the grace. */
  deleted(key: string): void {
    this.deletedStored.add(key);
    this.pending.add(key);
  }

  /** The next pass looks at every holder of every claim. */
  sweep(): void {
    this.full = true;
  }

  /** Whether a pass has anything to look at (waiting holders are looked at on every pass). */
  hasWork(): boolean {
    return this.full || this.pending.size > 0 || this.waitingSince.size > 0;
  }

  /** Forget everything (lost the lead). */
  reset(): void {
    this.pending.clear();
    this.waitingSince.clear();
    this.deletedStored.clear();
    this.full = false;
  }

  /** One pass; `stillLeading` is checked between releases. */
  async pass(stillLeading: () => boolean): Promise<void> {
    const { ledger } = this.options;
    const keys = new Set<string>(this.waitingSince.keys());
    if (this.full) {
      for (const claim of ledger.all()) for (const h of claim.spec.holders) keys.add(holderKey(h));
    }
    for (const k of this.pending) keys.add(k);
    this.pending.clear();
    this.full = false;
    const now = this.options.clock.monotonic();
    let n = 0;
    for (const key of keys) {
      if (!stillLeading()) return;
      await this.check(key, now);
      // Let I/O (admission calls) in between: a sweep over every claim is long.
      if (++n % 256 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private async check(key: string, now: number): Promise<void> {
    const { ledger, view } = this.options;
    const claims = ledger.claimsOf(key);
    const claim = claims[0];
    const h: ClaimHolder | undefined = claim?.spec.holders.find((x) => holderKey(x) === key);
    if (!claim || !h) {
      this.waitingSince.delete(key);
      this.deletedStored.delete(key);
      return;
    }
    // A worker has it, or will soon: let it finish first.
    if (view.busy(key)) return;
    if (isReservationKey(key)) {
      const owner = view.reservationOwner(key);
      if (owner) {
        this.waitingSince.delete(key);
        view.enqueue(owner);
        return;
      }
    } else {
      const svc = view.service(key);
      if (svc) {
        this.waitingSince.delete(key);
        this.deletedStored.delete(key);
        // Re-created under the same name, or turned away from us: the worker rebinds or releases.
        if ((h.uid && h.uid !== svc.uid) || !svc.ours) view.enqueue(key);
        return;
      }
    }
    // A holder whose Service was stored (its UID in the claim, or seen by this process) and is
    // gone is released at once; a reservation, or a holder whose Service this process never saw
    // (a create refused later in the chain, or deleted while no leader ran), waits for the grace.
    const first = this.waitingSince.get(key) ?? now;
    this.waitingSince.set(key, first);
    const wasStored = h.uid !== undefined || this.deletedStored.has(key);
    if (wasStored || now - first > this.graceMs) {
      const why = wasStored ? 'the Service is gone' : isReservationKey(key) ? 'no stored Service carries the reservation' : 'no such Service appeared';
      this.log(`releasing ${key}'s claim${claims.length > 1 ? 's' : ''} on ${claims.map((c) => c.spec.ip).join(', ')}: ${why}`);
      await ledger.release(key);
      this.waitingSince.delete(key);
      this.deletedStored.delete(key);
    }
  }
}

/** The reservation key a Service carries (`namespace/name*token`), if any. */
export function reservationKeyOf(namespace: string, annotation: unknown): string | undefined {
  return typeof annotation === 'string' && isReservationKey(annotation) ? serviceKey(namespace, annotation) : undefined;
}
