/**
 * CVE-2020-8554: any user who may create a Service may set `spec.externalIPs`, and kube-proxy
 * then sends the traffic for those addresses to the Service, whoever owns them. Kubernetes
 * leaves it to admission. This validating handler refuses an external IP that lies in one of our
 * pools unless
 *
 * - the Service's namespace may use that pool: the pool's serviceAllocation (namespaces,
 *   namespaceSelectors, serviceSelectors), decided by the allocator exactly as for a requested
 *   load-balancer IP, and
 * - no other Service holds the address as its load-balancer IP (the claims ledger's mirror; a
 *   free address is read back from the API server once, in case another replica just took it).
 *
 * Addresses outside every pool are not ours to police (Kubernetes' DenyServiceExternalIPs
 * admission plugin, or a policy engine, covers those). On UPDATE only the addresses the update
 * adds are checked, as DenyServiceExternalIPs does: a Service that already had them (admitted
 * before the pool existed, or while the webhook was down) can still be edited and deleted
 * (finalizers are removed by UPDATEs).
 */
import type { Allocator } from '../core/allocator/index.js';
import { newRequest, serviceKey } from '../core/allocator/index.js';
import { claimName } from '../core/allocator/claim-name.js';
import type { Pool } from '../core/config/index.js';
import { formatIP, parseIP, rangeContains, type IP } from '../core/ip/index.js';
import type { NamespaceLabelReader } from './namespaces.js';
import type { AdmissionHandler, AdmissionVerdict } from './review.js';

/** What the handler reads of the claims ledger (webhook/claims.ts's Ledger has all of it). */
export interface ExternalIPLedger {
  readonly allocator: Pick<Allocator, 'holders' | 'candidates'>;
  currentPools(): readonly Pool[];
  /** Reads one claim back from the API server into the mirror. */
  refresh?(name: string): Promise<void>;
}

export interface ExternalIPAdmissionOptions {
  ledger: ExternalIPLedger;
  /** Namespace labels (serviceAllocation.namespaceSelectors). */
  namespaces: NamespaceLabelReader;
}

type Fields = Record<string, unknown>;
const isMap = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why an external IP cannot be taken; the tail every denial shares. */
const WHY = 'an external IP receives all traffic for its address, so one inside a MetalLB pool must be free and from a pool the namespace may use (CVE-2020-8554)';

/** `default/web` from a ledger holder key; a tentative reservation `default/web*token` reads as its Service. */
function holderService(key: string): string {
  const star = key.indexOf('*');
  return star < 0 ? key : key.slice(0, star);
}

/** The external IPs of a Service object, or why they cannot be read. */
function externalIPs(obj: Fields | undefined): { ips: { ip: IP; index: number }[] } | { error: string } {
  const spec = isMap(obj?.spec) ? obj.spec : {};
  const raw = spec.externalIPs;
  if (raw === undefined || raw === null) return { ips: [] };
  if (!Array.isArray(raw)) return { error: `spec.externalIPs must be a list of IP addresses, got ${typeof raw === 'string' ? JSON.stringify(raw) : typeof raw}` };
  const ips: { ip: IP; index: number }[] = [];
  for (const [index, item] of raw.entries()) {
    const parsed = parseIP(typeof item === 'string' ? item.trim() : item);
    if (!parsed.ok) return { error: `spec.externalIPs[${index}]: ${parsed.error}` };
    ips.push({ ip: parsed.value, index });
  }
  return { ips };
}

/** The validating handler for `spec.externalIPs` of Services of every type. */
export class ExternalIPAdmission {
  constructor(private readonly options: ExternalIPAdmissionOptions) {}

  /** Validating, CREATE and UPDATE of Services. */
  readonly validate: AdmissionHandler = async (request) => {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
    const read = externalIPs(request.object);
    if ('error' in read) return { allowed: false, code: 400, message: read.error };
    if (read.ips.length === 0) return { allowed: true };
    const before = request.operation === 'UPDATE' ? externalIPs(request.oldObject) : { ips: [] };
    const had = 'error' in before ? [] : before.ips.map((e) => `${e.ip.family} ${e.ip.value}`);
    const added = read.ips.filter((e) => !had.includes(`${e.ip.family} ${e.ip.value}`));

    const { ledger } = this.options;
    const pools = ledger.currentPools();
    const inPools = added.flatMap((e) => {
      const pool = pools.find((p) => p.ranges.some((r) => rangeContains(r, e.ip)));
      return pool ? [{ ...e, pool }] : [];
    });
    if (inPools.length === 0) return { allowed: true };

    const meta = isMap(request.object?.metadata) ? request.object.metadata : {};
    const namespace = request.namespace ?? (typeof meta.namespace === 'string' ? meta.namespace : 'default');
    // A Service created with generateName has no name yet: it holds nothing, and is shown by its prefix.
    const name = request.name || (typeof meta.name === 'string' ? meta.name : '') || `${typeof meta.generateName === 'string' ? meta.generateName : ''}<generated>`;
    const service = serviceKey(namespace, name);
    const labels = isMap(meta.labels) ? Object.fromEntries(Object.entries(meta.labels).filter((e): e is [string, string] => typeof e[1] === 'string')) : {};
    const req = newRequest({ namespace, name, labels, namespaceLabels: await this.options.namespaces.labels(namespace) });
    const candidates = ledger.allocator.candidates(req);

    for (const { ip, index, pool } of inPools) {
      const at = `spec.externalIPs[${index}] ${formatIP(ip)}`;
      const refusal = candidates.find((c) => c.pool === pool.name && !c.usable && c.reason?.code === 'pool-not-allowed');
      if (refusal?.reason) {
        // The allocator's reason names the pool and who it serves; its advice ("use another pool") is for load-balancer IPs.
        const reason = refusal.reason.message.replace(/; [^;]*$/, '');
        return deny(403, `${at} is in a MetalLB pool ${service} may not use: ${reason}; ${WHY}`);
      }
      let holders = this.othersHolding(ip, service);
      if (holders.length === 0 && ledger.refresh) {
        // Another replica may have handed the address out a moment ago: read its claim once.
        await ledger.refresh(claimName(ip));
        holders = this.othersHolding(ip, service);
      }
      if (holders.length > 0) {
        return deny(403, `${at} is the load-balancer IP of ${holders.join(', ')} (pool "${pool.name}"); ${WHY}`);
      }
    }
    return { allowed: true };
  };

  /** Services other than `service` holding `ip`; none when `service` holds it itself (its own address, shared or not). */
  private othersHolding(ip: IP, service: string): string[] {
    const holders = [...new Set(this.options.ledger.allocator.holders(ip).map(holderService))];
    if (holders.includes(service)) return [];
    return holders;
  }
}

function deny(code: number, message: string): AdmissionVerdict {
  return { allowed: false, code, message };
}
