/** Time, passed in so that tests may drive it. The one Clock of the project's plumbing. */
export interface Clock {
  /** Wall-clock time, for timestamps written to the API (events, leases, statuses). */
  now(): Date;
  /** Monotonic milliseconds, for measuring intervals (never goes back when the wall clock is set). */
  monotonic(): number;
}

export const systemClock: Clock = { now: () => new Date(), monotonic: () => performance.now() };
