/**
 * Admission of Services: the mutating handler allocates (through the claims ledger) and records
 * the result on the object; the validating handler rejects what the user can fix.
 *
 * generateName: at admission a Service created with `generateName` has no name yet, so its
 * claim cannot name it. The mutator then claims under a reservation holder name
 * `<generateName>*<5 random chars>` (a `*` never appears in a real name, so it cannot collide),
 * and records the same text in the annotation `metallb.io/reservation`. The reconcile loop binds
 * the reservation to the Service that was created (holder renamed, UID recorded) by matching
 * that annotation and the assigned IPs, or reaps it after a grace period when no such Service
 * appeared (a later admission step rejected it).
 */
import { randomBytes } from 'node:crypto';
import { claimName } from '../core/allocator/claim-name.js';
import { serviceKey, serviceToRequest, type Failure, type FailureCode, type Request, type ServiceShape } from '../core/allocator/index.js';
import { formatIP, parseIP } from '../core/ip/index.js';
import type { Ledger } from './claims.js';
import type { NamespaceLabelReader } from './namespaces.js';
import type { AdmissionHandler, AdmissionRequest, AdmissionVerdict, JsonPatchOperation } from './review.js';

/** Annotations the webhook writes on a Service (the user's own request fields stay as written). */
export const ASSIGNMENT = {
  pool: 'metallb.io/ip-allocated-from-pool',
  ips: 'metallb.io/assigned-ips',
  reservation: 'metallb.io/reservation',
} as const;

/** What the handlers report to metrics; the webhook's Metrics class satisfies it. */
export interface AllocationMetrics {
  countAllocation(pool: string): void;
  countFailure(reason: string): void;
}

export interface ServiceAdmissionOptions {
  ledger: Ledger;
  /** Namespace labels (serviceAllocation.namespaceSelectors): the watch-fed NamespaceLabels. */
  namespaces: NamespaceLabelReader;
  /** Our spec.loadBalancerClass; Services naming another class are not ours. */
  loadBalancerClass?: string;
  metrics?: AllocationMetrics;
  /** Reservation suffixes (tests pass a deterministic one). */
  random?: () => string;
}

/** Failures admitted with a warning: the Service is valid, addresses are just short. */
const SHORTAGES: ReadonlySet<FailureCode> = new Set(['pool-full', 'no-pool-for-family']);

/** HTTP-like code of a denial. */
function denialCode(code: FailureCode): number {
  if (code === 'ip-in-use' || code === 'sharing-key-mismatch' || code === 'port-conflict') return 409;
  if (code === 'pool-not-allowed') return 403;
  return 400;
}

type Service = ServiceShape & { metadata?: ServiceShape['metadata'] & { generateName?: string; uid?: string } };

/** Whether a Service is a LoadBalancer Service of ours. */
export function isOurs(svc: Service | undefined, loadBalancerClass?: string): boolean {
  if (!svc || svc.spec?.type !== 'LoadBalancer') return false;
  const cls = svc.spec.loadBalancerClass;
  return !cls || cls === loadBalancerClass;
}

function annotations(svc: Service | undefined): Record<string, string> {
  return svc?.metadata?.annotations ?? {};
}

/** JSON Pointer escaping of one path segment (RFC 6901). */
function pointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** The patch that makes the object's annotations `want` for our keys (undefined value = remove). */
export function annotationPatch(svc: Service, want: Partial<Record<string, string | undefined>>): JsonPatchOperation[] {
  const have = svc.metadata?.annotations;
  const ops: JsonPatchOperation[] = [];
  if (!have) {
    const value = Object.fromEntries(Object.entries(want).filter((e): e is [string, string] => e[1] !== undefined));
    if (Object.keys(value).length > 0) {
      if (!svc.metadata) ops.push({ op: 'add', path: '/metadata', value: {} });
      ops.push({ op: 'add', path: '/metadata/annotations', value });
    }
    return ops;
  }
  for (const [key, value] of Object.entries(want)) {
    const path = `/metadata/annotations/${pointer(key)}`;
    if (value === undefined) {
      if (key in have) ops.push({ op: 'remove', path });
    } else if (have[key] !== value) {
      ops.push({ op: 'add', path, value });
    }
  }
  return ops;
}

const NO_ASSIGNMENT = { [ASSIGNMENT.pool]: undefined, [ASSIGNMENT.ips]: undefined, [ASSIGNMENT.reservation]: undefined };

/** The two admission handlers for Services. */
export class ServiceAdmission {
  private readonly random: () => string;

  constructor(private readonly options: ServiceAdmissionOptions) {
    this.random = options.random ?? (() => randomBytes(4).toString('hex').slice(0, 5));
  }

  /** Mutating, CREATE and UPDATE: allocate and record the assignment on the object. */
  readonly mutate: AdmissionHandler = async (request) => {
    const svc = request.object as Service | undefined;
    const old = request.oldObject as Service | undefined;
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
    if (!svc) return { allowed: true };
    const { ledger, loadBalancerClass } = this.options;
    if (!isOurs(svc, loadBalancerClass)) {
      // Type changed away from LoadBalancer (or to another class): release and strip our marks.
      const holder = this.holderOf(request, svc);
      if (old && isOurs(old, loadBalancerClass) && holder && !request.dryRun) await ledger.release(holder);
      const patch = annotationPatch(svc, NO_ASSIGNMENT);
      return patch.length > 0 ? { allowed: true, patch } : { allowed: true };
    }
    const read = await this.requestOf(request, svc, true);
    if (!read.ok) return { allowed: true }; // the validating handler explains
    const { req, reservation } = read;
    const stale = annotations(svc)[ASSIGNMENT.reservation];
    if (reservation === undefined && stale && svc.metadata?.name && !request.dryRun) {
      // The Service got its name since its reservation: hand the reservation's claims to it first,
      // so that this update keeps the IPs instead of allocating new ones.
      await ledger.bind({ namespace: req.namespace, name: stale }, { name: req.name, ...(svc.metadata.uid ? { uid: svc.metadata.uid } : {}) });
    }
    const result = await ledger.allocate(req, { dryRun: request.dryRun });
    if (!result.ok) {
      this.options.metrics?.countFailure(result.failure.code);
      // Nothing backs a user-written assignment: take it off.
      const patch = annotationPatch(svc, NO_ASSIGNMENT);
      const warnings = SHORTAGES.has(result.failure.code) ? [result.failure.message] : undefined;
      return { allowed: true, ...(patch.length > 0 && { patch }), ...(warnings && { warnings }) };
    }
    if (result.changed && !request.dryRun) this.options.metrics?.countAllocation(result.pool);
    const patch = annotationPatch(svc, {
      [ASSIGNMENT.pool]: result.pool,
      [ASSIGNMENT.ips]: result.ips.map(formatIP).join(','),
      [ASSIGNMENT.reservation]: reservation,
    });
    return patch.length > 0 ? { allowed: true, patch } : { allowed: true };
  };

  /**
   * Validating, CREATE and UPDATE: deny what the user can fix, warn about shortages and
   * deprecated annotations. It sees the mutated object: an assignment with a claim behind it is
   * the mutator's work and is accepted as is.
   */
  readonly validate: AdmissionHandler = async (request) => {
    const svc = request.object as Service | undefined;
    if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || !svc) return { allowed: true };
    if (!isOurs(svc, this.options.loadBalancerClass)) return { allowed: true };
    const read = await this.requestOf(request, svc, false);
    if (!read.ok) return deny(read.failure, read.warnings);
    const { req, warnings } = read;
    const holder = serviceKey(req.namespace, req.name);
    const written = annotations(svc)[ASSIGNMENT.ips];
    if (written !== undefined && (await this.backedByClaims(holder, written))) return verdict(true, warnings);
    const answer = this.options.ledger.allocator.assign(req, { dryRun: true });
    if (answer.ok) return verdict(true, warnings);
    if (SHORTAGES.has(answer.failure.code)) return verdict(true, [...warnings, answer.failure.message]);
    return deny(answer.failure, warnings);
  };

  /** Whether the claims record exactly `written` (comma-separated IPs) for the holder. */
  private async backedByClaims(holder: string, written: string): Promise<boolean> {
    const ips = written.split(',').map((t) => parseIP(t.trim()));
    if (ips.length === 0 || ips.some((p) => !p.ok)) return false;
    const want = ips.map((p) => (p.ok ? formatIP(p.value) : '')).sort();
    const matches = () => {
      const held = this.options.ledger.heldBy(holder);
      return !!held && JSON.stringify(held.ips.map(formatIP).sort()) === JSON.stringify(want);
    };
    if (matches()) return true;
    // The mutating call may have reached another replica whose claims our mirror has not seen yet.
    for (const p of ips) if (p.ok) await this.options.ledger.refresh(claimName(p.value));
    return matches();
  }

  /** The holder name of a Service: its name, or its reservation when it has none yet. */
  private holderOf(request: AdmissionRequest, svc: Service): string | undefined {
    const namespace = request.namespace ?? svc.metadata?.namespace ?? 'default';
    const name = svc.metadata?.name || request.name || annotations(svc)[ASSIGNMENT.reservation];
    return name ? serviceKey(namespace, name) : undefined;
  }

  private async requestOf(
    request: AdmissionRequest,
    svc: Service,
    mayReserve: boolean,
  ): Promise<{ ok: true; req: Request; reservation?: string; warnings: string[] } | { ok: false; failure: Failure; warnings: string[] }> {
    const namespace = request.namespace ?? svc.metadata?.namespace ?? 'default';
    let name = svc.metadata?.name || request.name;
    let reservation: string | undefined;
    if (!name) {
      reservation = annotations(svc)[ASSIGNMENT.reservation];
      const prefix = svc.metadata?.generateName ?? '';
      // Reinvocation keeps the reservation already made; a fresh one otherwise.
      if (!reservation?.startsWith(`${prefix}*`)) reservation = mayReserve ? `${prefix}*${this.random()}` : `${prefix}*`;
      name = reservation;
    }
    const labels = await this.options.namespaces.labels(namespace);
    const read = serviceToRequest({ ...svc, metadata: { ...(svc.metadata ?? {}), namespace, name } }, labels);
    const warnings = read.deprecated.map((d) => `annotation ${d.used} is deprecated; use ${d.preferred}`);
    if (!read.ok) return { ok: false, failure: read.failure, warnings };
    return { ok: true, req: read.request, ...(reservation !== undefined && { reservation }), warnings };
  }
}

function verdict(allowed: boolean, warnings: string[]): AdmissionVerdict {
  return warnings.length > 0 ? { allowed, warnings } : { allowed };
}

function deny(failure: Failure, warnings: string[]): AdmissionVerdict {
  return { allowed: false, message: failure.message, code: denialCode(failure.code), ...(warnings.length > 0 && { warnings }) };
}
