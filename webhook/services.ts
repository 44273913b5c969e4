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
import { isDeepStrictEqual } from 'node:util';
import { formatIP, parseIP, type Family, type IP } from '../core/ip/index.js';
import { isReservationKey, type Ledger } from './claims.js';
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
  /** The family the API server gives a single-stack Service that sets no spec.ipFamilies (the first service CIDR's; default IPv4). */
  defaultFamily?: () => Family;
  /** Reservation suffixes (tests pass a deterministic one). */
  random?: () => string;
}

/** Failures admitted with a warning: the Service is valid, addresses are just short. */
const SHORTAGES: ReadonlySet<FailureCode> = new Set(['pool-full', 'no-pool-for-family']);

/**
 * The HTTP code of a denial, as kube-apiserver answers: 403 Forbidden when the namespace may not
 * use the pool (a policy, not a typo), 422 Invalid for every field the user can correct. Never
 * 409: kubectl apply retries a Conflict as if it were a race.
 */
function denialCode(code: FailureCode): number {
  return code === 'pool-not-allowed' ? 403 : 422;
}

type Service = ServiceShape & { metadata?: ServiceShape['metadata'] & { generateName?: string; uid?: string } };

/** Whether a Service is a LoadBalancer Service of ours. */
export function isOurs(svc: { spec?: { type?: unknown; loadBalancerClass?: unknown } | null } | undefined, loadBalancerClass?: string): boolean {
  if (!svc || svc.spec?.type !== 'LoadBalancer') return false;
  const cls = svc.spec.loadBalancerClass;
  return !cls || cls === loadBalancerClass;
}

/** The object's annotations; a value that is not a string (hostile input) reads as absent. */
function annotations(svc: Service | undefined): Record<string, string> {
  const a = svc?.metadata?.annotations;
  if (!a || typeof a !== 'object') return {};
  return Object.fromEntries(Object.entries(a).filter((e): e is [string, string] => typeof e[1] === 'string'));
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

/** The IPs of an assigned-ips annotation (empty when absent, not a string, or malformed). */
export function parseIPs(text: unknown): IP[] {
  if (typeof text !== 'string' || !text) return [];
  const out: IP[] = [];
  for (const t of text.split(',')) {
    const p = parseIP(t.trim());
    if (!p.ok) return [];
    out.push(p.value);
  }
  return out;
}

/** Our annotations as the object carries them (undefined where absent). */
function assignmentOf(svc: Service): Record<string, string | undefined> {
  const a = annotations(svc);
  return { [ASSIGNMENT.pool]: a[ASSIGNMENT.pool], [ASSIGNMENT.ips]: a[ASSIGNMENT.ips], [ASSIGNMENT.reservation]: a[ASSIGNMENT.reservation] };
}

const OWNED: ReadonlySet<string> = new Set(Object.values(ASSIGNMENT));

/** Whether two versions of a Service differ only in what we own (our annotations) and bookkeeping metadata. */
export function sameUserContent(a: Service, b: Service): boolean {
  const strip = (s: Service) => {
    const { metadata, status: _status, ...rest } = s as Service & { status?: unknown };
    const ann = Object.fromEntries(Object.entries(metadata?.annotations ?? {}).filter(([k]) => !OWNED.has(k)));
    return { rest, labels: metadata?.labels ?? {}, annotations: ann };
  };
  return isDeepStrictEqual(strip(a), strip(b));
}

const NO_ASSIGNMENT = { [ASSIGNMENT.pool]: undefined, [ASSIGNMENT.ips]: undefined, [ASSIGNMENT.reservation]: undefined };

/** The two admission handlers for Services. */
export class ServiceAdmission {
  private readonly random: () => string;

  constructor(private readonly options: ServiceAdmissionOptions) {
    // Unguessable: a reservation is honoured only for the Service that carries it, and its text is seen by others only once stored.
    this.random = options.random ?? (() => randomBytes(5).toString('hex'));
  }

  /**
   * Mutating, CREATE and UPDATE: allocate and record the assignment on the object.
   *
   * Nothing here outlives a refused request: addresses the Service already shows stay its own,
   * new ones are only reserved (see Ledger.reserve), and nothing is released; the reconcile loop
   * does that once it sees the stored Service. Annotations we own are never taken from the user:
   * they are computed, or (for a write that changes nothing the user controls, which is how the
   * controller writes) accepted only when the claims back them.
   */
  readonly mutate: AdmissionHandler = async (request) => {
    const svc = request.object as Service | undefined;
    const old = request.operation === 'UPDATE' ? (request.oldObject as Service | undefined) : undefined;
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
    if (!svc) return { allowed: true };
    const { ledger, loadBalancerClass } = this.options;
    if (!isOurs(svc, loadBalancerClass)) {
      // Type changed away from LoadBalancer (or to another class): strip our marks; the loop
      // releases the claims once the change is stored.
      const patch = annotationPatch(svc, NO_ASSIGNMENT);
      return patch.length > 0 ? { allowed: true, patch } : { allowed: true };
    }
    const oldOurs = old && isOurs(old, loadBalancerClass) ? old : undefined;
    if (oldOurs && sameUserContent(oldOurs, svc)) return this.ownWrite(request, svc, oldOurs);

    const read = await this.requestOf(request, svc, true);
    if (!read.ok) {
      // The validating handler explains; what we own goes back to what is stored.
      const patch = annotationPatch(svc, oldOurs ? assignmentOf(oldOurs) : NO_ASSIGNMENT);
      return patch.length > 0 ? { allowed: true, patch } : { allowed: true };
    }
    const { req, reservation } = read;
    // A create of a named Service claims under its name: it holds nothing yet that could move.
    // Reinvoked, it keeps what the first pass claimed (its own claims not yet bound to a UID).
    const direct = request.operation === 'CREATE' && reservation === undefined;
    const keep = oldOurs ? await this.shownAndHeld(request, oldOurs, req.namespace, req.name) : direct ? this.unboundOwn(svc, req.namespace, req.name) : [];
    const incoming = annotations(svc)[ASSIGNMENT.reservation];
    const result = await ledger.reserve(req, keep, {
      ...(request.dryRun && { dryRun: true }),
      token: this.random,
      ...(reservation !== undefined && { generated: true }),
      ...(direct && { direct: true }),
      ...(reservation === undefined && !direct && incoming !== undefined && { reuse: incoming }),
    });
    if (!result.ok) {
      this.options.metrics?.countFailure(result.failure.code);
      // Nothing is moved: the object keeps what is stored (nothing, for a create).
      const patch = annotationPatch(svc, oldOurs ? assignmentOf(oldOurs) : NO_ASSIGNMENT);
      const warnings = SHORTAGES.has(result.failure.code) ? [result.failure.message] : undefined;
      return { allowed: true, ...(patch.length > 0 && { patch }), ...(warnings && { warnings }) };
    }
    if (result.changed && !request.dryRun) this.options.metrics?.countAllocation(result.pool);
    const patch = annotationPatch(svc, {
      [ASSIGNMENT.pool]: result.pool,
      [ASSIGNMENT.ips]: result.ips.map(formatIP).join(','),
      [ASSIGNMENT.reservation]: result.reservation ?? (oldOurs && result.ips.length > keep.length ? annotations(oldOurs)[ASSIGNMENT.reservation] : undefined),
    });
    return patch.length > 0 ? { allowed: true, patch } : { allowed: true };
  };

  /**
   * An update that changes nothing the user controls (the controller recording or clearing an
   * assignment, or a user editing only our annotations): our annotations pass when the claims
   * back them, and go back to what is stored otherwise.
   */
  private async ownWrite(request: AdmissionRequest, svc: Service, old: Service): Promise<AdmissionVerdict> {
    const namespace = request.namespace ?? svc.metadata?.namespace ?? 'default';
    const name = svc.metadata?.name || request.name;
    const written = annotations(svc)[ASSIGNMENT.ips];
    const reservation = annotations(svc)[ASSIGNMENT.reservation];
    const storedReservation = annotations(old)[ASSIGNMENT.reservation];
    const reservationOk = reservation === undefined || reservation === storedReservation;
    if (reservationOk && (written === undefined || (await this.backedByClaims(namespace, name, written, reservation)))) {
      // A cleared assignment with a pool annotation left behind is tidied.
      if (written === undefined && annotations(svc)[ASSIGNMENT.pool] !== undefined) return { allowed: true, patch: annotationPatch(svc, { [ASSIGNMENT.pool]: undefined }) };
      return { allowed: true };
    }
    const patch = annotationPatch(svc, assignmentOf(old));
    return patch.length > 0 ? { allowed: true, patch } : { allowed: true };
  }

  /** The IPs the object carries (a reinvocation's first pass) that claims hold for this name with no UID bound yet. */
  private unboundOwn(svc: Service, namespace: string, name: string): IP[] {
    const holder = serviceKey(namespace, name);
    return parseIPs(annotations(svc)[ASSIGNMENT.ips]).filter((ip) =>
      this.options.ledger
        .claimsOf(holder)
        .some((c) => c.spec.ip === formatIP(ip) && c.spec.holders.some((h) => h.namespace === namespace && h.name === name && !h.reservation && !h.uid)),
    );
  }

  /** The IPs the stored Service shows that its claims (its own, not a reservation) back. */
  private async shownAndHeld(request: AdmissionRequest, old: Service, namespace: string, name: string): Promise<IP[]> {
    const shown = parseIPs(annotations(old)[ASSIGNMENT.ips]);
    if (shown.length === 0) return [];
    const holder = serviceKey(namespace, name);
    const held = () => this.options.ledger.heldBy(holder)?.ips ?? [];
    const backed = () => shown.filter((ip) => held().some((h) => h.family === ip.family && h.value === ip.value));
    if (backed().length === shown.length || request.dryRun) return backed();
    // The mirror may lag another replica's writes: read the claims themselves.
    for (const ip of shown) await this.options.ledger.refresh(claimName(ip));
    return backed();
  }

  /**
   * Validating, CREATE and UPDATE: deny what the user can fix, warn about shortages and
   * deprecated annotations. It sees the mutated object: an assignment with a claim behind it is
   * the mutator's work and is accepted as is. An update that changes nothing the user controls
   * is not judged again (the controller's own writes, and objects that became invalid only
   * because the configuration changed under them).
   */
  readonly validate: AdmissionHandler = async (request) => {
    const svc = request.object as Service | undefined;
    if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || !svc) return { allowed: true };
    if (!isOurs(svc, this.options.loadBalancerClass)) return { allowed: true };
    const old = request.operation === 'UPDATE' ? (request.oldObject as Service | undefined) : undefined;
    if (old && isOurs(old, this.options.loadBalancerClass) && sameUserContent(old, svc)) return { allowed: true };
    const read = await this.requestOf(request, svc, false);
    if (!read.ok) return deny(read.failure, read.warnings);
    const { req, warnings } = read;
    const written = annotations(svc)[ASSIGNMENT.ips];
    const namespace = req.namespace;
    const name = svc.metadata?.name || request.name;
    if (written !== undefined && (await this.backedByClaims(namespace, name, written, annotations(svc)[ASSIGNMENT.reservation]))) return verdict(true, warnings);
    const answer = this.options.ledger.allocator.assign(req, { dryRun: true });
    if (answer.ok) return verdict(true, warnings);
    if (SHORTAGES.has(answer.failure.code)) return verdict(true, [...warnings, answer.failure.message]);
    return deny(answer.failure, warnings);
  };

  /** Whether the claims record every IP of `written` for the Service, as its own or under its reservation. */
  private async backedByClaims(namespace: string, name: string | undefined, written: string, reservation: string | undefined): Promise<boolean> {
    const ips = parseIPs(written);
    if (ips.length === 0 || ips.length !== written.split(',').length) return false;
    const holders = [...(name ? [serviceKey(namespace, name)] : []), ...(reservation && isReservationKey(reservation) ? [serviceKey(namespace, reservation)] : [])];
    const matches = () => ips.every((ip) => holders.some((h) => (this.options.ledger.heldBy(h)?.ips ?? []).some((x) => x.family === ip.family && x.value === ip.value)));
    if (matches()) return true;
    // The mutating call may have reached another replica whose claims our mirror has not seen yet.
    for (const ip of ips) await this.options.ledger.refresh(claimName(ip));
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
    const family = this.familyProblem(svc, read.request);
    if (family) return { ok: false, failure: family, warnings };
    return { ok: true, req: read.request, ...(reservation !== undefined && { reservation }), warnings };
  }

  /**
   * Mutating admission runs before the API server defaults spec.ipFamilies: a single-stack
   * Service that does not set it becomes the cluster's default family. A requested IP of the
   * other family would then never fit (and the loop would retry it forever), so refuse it now,
   * with the fix.
   */
  private familyProblem(svc: Service, req: Request): Failure | undefined {
    const spec = (svc.spec ?? {}) as { ipFamilies?: unknown; ipFamilyPolicy?: unknown };
    const familiesSet = Array.isArray(spec.ipFamilies) && spec.ipFamilies.length > 0;
    const single = spec.ipFamilyPolicy === undefined || spec.ipFamilyPolicy === 'SingleStack';
    if (familiesSet || !single) return undefined;
    const cluster = this.options.defaultFamily?.() ?? 'IPv4';
    const other = req.requestedIPs.find((ip) => ip.family !== cluster);
    if (!other) return undefined;
    return {
      code: 'family-mismatch',
      message: `requested IP ${formatIP(other)} is ${other.family}, but the Service will be ${cluster} (the cluster's default family, as spec.ipFamilies is not set): set spec.ipFamilies: [${other.family}]`,
    };
  }
}

function verdict(allowed: boolean, warnings: string[]): AdmissionVerdict {
  return warnings.length > 0 ? { allowed, warnings } : { allowed };
}

function deny(failure: Failure, warnings: string[]): AdmissionVerdict {
  return { allowed: false, message: failure.message, code: denialCode(failure.code), ...(warnings.length > 0 && { warnings }) };
}
