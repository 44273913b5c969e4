import { KubeError, type KubeApi, type KubeObject } from './client.js';
import { LeaderElector } from './leader.js';

/**
 * One Lease with resourceVersion checks. `hold` parks the next renewal inside its write; `gate`
 * makes reads return late (what they read is taken at once), to order a release's read before
 * a renewal's write.
 */
class LeaseStore {
  lease: KubeObject | undefined;
  private rv = 0;
  hold: { entered: () => void; release: Promise<void> } | undefined;
  gate: Promise<void> | undefined;

  readonly api = {
    get: async () => {
      const seen = this.lease ? structuredClone(this.lease) : undefined;
      await this.gate;
      return seen;
    },
    create: async (_r: unknown, obj: KubeObject) => {
      if (this.lease) throw new KubeError(409, 'AlreadyExists', 'exists');
      this.lease = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
      return structuredClone(this.lease);
    },
    replace: async (_r: unknown, obj: KubeObject) => {
      const hold = this.hold;
      if (hold && obj.spec && (obj.spec as { holderIdentity?: string }).holderIdentity) {
        this.hold = undefined;
        hold.entered();
        await hold.release;
      }
      if (obj.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) throw new KubeError(409, 'Conflict', 'stale');
      this.lease = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
      return structuredClone(this.lease);
    },
  } as unknown as KubeApi;
}

/** Runs `work`, failing after `ms` with a message naming `what` instead of hanging until jest's timeout. */
async function within<T>(ms: number, what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const holder = (s: LeaseStore) => (s.lease?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;

describe('LeaderElector', () => {
  it('releases the lease on stop even while a renewal is in flight', async () => {
    const store = new LeaseStore();
    let leading = false;
    const elector = new LeaderElector({
      kube: store.api,
      namespace: 'metallb-system',
      identity: 'a',
      leaseDurationMs: 2000,
      renewMs: 20,
      onStartedLeading: () => (leading = true),
      onStoppedLeading: () => (leading = false),
    });
    let release = () => {};
    let open = () => {};
    let stopped: Promise<void> | undefined;
    elector.start();
    try {
      const deadline = Date.now() + 1000;
      while (!leading) {
        if (Date.now() > deadline) throw new Error('timed out after 1000 ms waiting for the elector to lead');
        await new Promise((r) => setTimeout(r, 5));
      }

      // Park the next renewal inside its write; stop (its read of the lease, if it reads now,
      // sees the lease before the renewal); let the renewal land; then let reads return.
      const entered = new Promise<void>((resolve) => {
        store.hold = { entered: resolve, release: new Promise<void>((r) => (release = r)) };
      });
      await within(1000, 'the next renewal', () => entered);
      store.gate = new Promise<void>((r) => (open = r));
      stopped = elector.stop();
      await new Promise((r) => setTimeout(r, 20));
      release();
      await new Promise((r) => setTimeout(r, 20));
      open();
      store.gate = undefined;
      await within(1000, 'stop()', () => stopped as Promise<void>);

      expect(holder(store)).toBe('');
      expect(leading).toBe(false);
    } finally {
      // Whatever failed, nothing stays parked and the elector's timer does not outlive the test.
      store.hold = undefined;
      release();
      open();
      store.gate = undefined;
      await (stopped ?? elector.stop());
    }
  });
});
