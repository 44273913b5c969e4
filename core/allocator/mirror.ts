/**
 * What the IPClaim ledger records, restored into an Allocator: the controller's replicas mirror
 * their claims so, and the plugin does the same to answer as the controller would (one function,
 * so the two cannot disagree).
 */
import type { IP } from '../ip/index.js';
import type { Allocator, Held, Revocation } from './allocator.js';
import { newRequest, serviceKey, type Request } from './request.js';

/** A request for exactly `ips` under another holder name (a reservation, a placeholder). */
export function narrowed(req: Request, name: string, ips: readonly IP[]): Request {
  return newRequest({
    ...req,
    name,
    requestedIPs: [...ips],
    families: ips.map((ip) => ip.family),
    familyPolicy: ips.length > 1 ? 'RequireDualStack' : 'SingleStack',
  });
}

/** One holder's claimed addresses, under its recorded request, and a request its claims satisfy. */
export interface Claimed {
  held: Held;
  /** A request the claimed addresses satisfy, built on `base` (the recorded one). */
  guess: (base: Request) => Request;
}

/** A holder whose claims fit no request of its own: what was refused, and the placeholders that hold its addresses instead. */
export interface Unmirrored {
  refused: Revocation;
  held: Held;
  /** Placeholder holder keys (`namespace/name*~mI`), one per address that could be held alone. */
  placeholders: string[];
}

/**
 * Restores every holder under its request. One whose request no longer fits its addresses (a
 * half-made dual-stack claim, pools that changed) is restored under `guess`; one still refused
 * (caught between two states, e.g. two addresses of one family while a change is adopted) has
 * each address restored alone under a placeholder `name*~mI`: every claimed address must stay
 * taken, or the mirror would offer it to someone else.
 */
export function restoreClaimed(allocator: Allocator, claimed: readonly Claimed[]): Unmirrored[] {
  const out: Unmirrored[] = [];
  for (const refused of allocator.restore(claimed.map((c) => c.held))) {
    const c = claimed.find((x) => serviceKey(x.held.request.namespace, x.held.request.name) === refused.service);
    if (!c) continue;
    const h = c.held;
    if (allocator.restore([{ ...h, request: c.guess(h.request) }]).length === 0) continue;
    const placeholders: string[] = [];
    h.ips.forEach((ip, i) => {
      const name = `${h.request.name}*~m${i}`;
      if (allocator.restore([{ request: narrowed(h.request, name, [ip]), ips: [ip], ...(h.pool !== undefined && { pool: h.pool }) }]).length === 0)
        placeholders.push(serviceKey(h.request.namespace, name));
    });
    out.push({ refused, held: h, placeholders });
  }
  return out;
}
