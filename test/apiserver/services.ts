/**
 * Services, as kube-apiserver treats them: static defaults (type, protocol, targetPort,
 * traffic policies), ClusterIP and node port allocation with dual-stack `ipFamilies` /
 * `ipFamilyPolicy` inference, status cleared on create, and the validation messages of
 * pkg/apis/core/validation. MetalLB lives on Services, so this is where the double must be
 * most faithful.
 */
import { isIP } from 'node:net';
import { FieldErrors, type FieldError } from './errors.js';
import { isObject, jsonEqual, type KubeObject } from './object.js';
import type { Reservation, Strategy } from './resources.js';
import type { ObjectStore } from './store.js';
import { isCidr, isDns1123Label, isDns1123Subdomain, isIpAddress, isQualifiedName, NAME_MESSAGES, validateLabelMap } from './validation.js';

/** The address ranges of the double's cluster; documentation ranges only. */
export interface ServiceNetwork {
  /** IPv4 service CIDR (default 198.51.100.0/24). */
  ipv4Cidr: string;
  /** IPv6 service CIDR (default 2001:db8:1::/112). */
  ipv6Cidr: string;
  /** The cluster's primary family: a single-stack Service gets this one unless it asks. */
  primaryFamily: 'IPv4' | 'IPv6';
  /** Inclusive node port range (default 30000-32767). */
  nodePorts: [number, number];
}

/** The defaults: dual-stack, IPv4 first, documentation ranges. */
export const DEFAULT_SERVICE_NETWORK: ServiceNetwork = {
  ipv4Cidr: '198.51.100.0/24',
  ipv6Cidr: '2001:db8:1::/112',
  primaryFamily: 'IPv4',
  nodePorts: [30000, 32767],
};

type Family = 'IPv4' | 'IPv6';
type Spec = Record<string, unknown>;

const TYPES = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];
const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];
const POLICIES = ['PreferDualStack', 'RequireDualStack', 'SingleStack'];

function specOf(svc: KubeObject): Spec {
  if (!isObject(svc.spec)) svc.spec = {};
  return svc.spec as Spec;
}

function ports(spec: Spec): Record<string, unknown>[] {
  return Array.isArray(spec.ports) ? spec.ports.filter(isObject) : [];
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

/** Parses an address into its family and value (BigInt keeps IPv6 arithmetic exact). */
function ipToBigInt(ip: string): { family: Family; value: bigint } | undefined {
  const v = isIP(ip);
  if (v === 4) return { family: 'IPv4', value: ip.split('.').reduce((n, o) => (n << 8n) + BigInt(Number(o)), 0n) };
  if (v === 6) {
    let text = ip;
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
    if (v4) {
      const n = ipToBigInt(v4[1] as string)?.value ?? 0n;
      text = text.slice(0, -(v4[1] as string).length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
    }
    const [head, tail] = text.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    return { family: 'IPv6', value: groups.reduce((n, g) => (n << 16n) + BigInt(parseInt(g, 16)), 0n) };
  }
  return undefined;
}

function bigIntToIp(family: Family, value: bigint): string {
  if (family === 'IPv4') return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) => ((value >> s) & 0xffffn).toString(16));
  // RFC 5952: compress the longest run (of two or more) of zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** The canonical text of an address (what the API server stores), or the input when invalid. */
export function canonicalIp(ip: string): string {
  const p = ipToBigInt(ip);
  return p ? bigIntToIp(p.family, p.value) : ip;
}

function familyOf(ip: string): Family | undefined {
  return ipToBigInt(ip)?.family;
}

interface Range {
  family: Family;
  cidr: string;
  first: bigint;
  last: bigint;
}

function rangeOf(cidr: string): Range {
  const [ip, bits] = cidr.split('/') as [string, string];
  const p = ipToBigInt(ip);
  if (!p) throw new Error(`bad service CIDR ${cidr}`);
  const width = p.family === 'IPv4' ? 32n : 128n;
  const host = width - BigInt(bits);
  const base = (p.value >> host) << host;
  const size = 1n << host;
  // The network address is never handed out, nor IPv4's broadcast address.
  return { family: p.family, cidr, first: base + 1n, last: p.family === 'IPv4' ? base + size - 2n : base + size - 1n };
}

function needsClusterIp(spec: Spec): boolean {
  return spec.type !== 'ExternalName';
}
function needsNodePorts(spec: Spec): boolean {
  return spec.type === 'NodePort' || (spec.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
}
function needsHealthCheckPort(spec: Spec): boolean {
  return spec.type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local';
}
function isHeadless(spec: Spec): boolean {
  return spec.clusterIP === 'None' || strings(spec.clusterIPs)[0] === 'None';
}

/** The ClusterIPs (canonical) and node ports a stored Service holds. Reads, never defaults. */
function allocatedBy(s: Readonly<KubeObject>): { ips: string[]; ports: number[] } {
  const spec = isObject(s.spec) ? (s.spec as Spec) : {};
  const ips = strings(spec.clusterIPs)
    .filter((ip) => ip !== 'None')
    .map(canonicalIp);
  const held = ports(spec)
    .map((p) => p.nodePort)
    .filter((n): n is number => typeof n === 'number' && n > 0);
  if (typeof spec.healthCheckNodePort === 'number' && spec.healthCheckNodePort > 0) held.push(spec.healthCheckNodePort);
  return { ips, ports: held };
}

/** What one allocation request must not hand out (see ServiceStrategy.takenIps). */
interface Taken<K> {
  has(k: K): boolean;
  add(k: K): void;
}

/**
 * Which stored Services hold each value (ClusterIP or node port). Normally one; a set, so that
 * objects written around validation (the raw store) cannot corrupt the count.
 */
class Holders<K> {
  private readonly byValue = new Map<K, Set<string>>();

  constructor(private readonly freed: (k: K) => void) {}

  get size(): number {
    return this.byValue.size;
  }

  has(k: K): boolean {
    return this.byValue.has(k);
  }

  /** Whether a Service other than `holder` holds `k`. */
  heldByOther(k: K, holder: string | undefined): boolean {
    const s = this.byValue.get(k);
    return s !== undefined && (holder === undefined || s.size > 1 || !s.has(holder));
  }

  add(k: K, holder: string): void {
    let s = this.byValue.get(k);
    if (!s) this.byValue.set(k, (s = new Set()));
    s.add(holder);
  }

  remove(k: K, holder: string): void {
    const s = this.byValue.get(k);
    if (!s?.delete(holder) || s.size > 0) return;
    this.byValue.delete(k);
    this.freed(k);
  }
}

/**
 * The Service strategy. Allocation reads what is taken from an index of what stored Services
 * hold, kept up to date from the store's change stream (so deletes of every kind, garbage
 * collection and namespace cleanup included, free what they held), plus what in-flight
 * requests reserved. With a hint per range below which everything is held, a create costs
 * O(1) amortised however many Services exist.
 */
export class ServiceStrategy implements Strategy {
  private readonly ranges: Record<Family, Range>;
  private readonly pendingIps = new Set<string>();
  private readonly pendingPorts = new Set<number>();
  private readonly ipHolders = new Holders<string>((ip) => this.ipFreed(ip));
  private readonly portHolders = new Holders<number>((p) => this.portFreed(p));
  /** Per family: every address of the range below this one is held in storage. */
  private readonly ipHint: Record<Family, bigint>;
  /** Every node port below this one is held in storage. */
  private portHint: number;

  constructor(
    store: ObjectStore,
    private readonly network: ServiceNetwork = DEFAULT_SERVICE_NETWORK,
  ) {
    this.ranges = { IPv4: rangeOf(network.ipv4Cidr), IPv6: rangeOf(network.ipv6Cidr) };
    this.ipHint = { IPv4: this.ranges.IPv4.first, IPv6: this.ranges.IPv6.first };
    this.portHint = network.nodePorts[0];
    for (const s of store.peek('services')) this.index(s, true);
    store.subscribe((c) => {
      if (c.resource !== 'services') return;
      if (c.oldObject) this.index(c.oldObject, false);
      if (c.type !== 'DELETED') this.index(c.object, true);
    });
  }

  /** How many ClusterIPs and node ports stored Services hold (for tests). */
  get allocated(): { clusterIPs: number; nodePorts: number } {
    return { clusterIPs: this.ipHolders.size, nodePorts: this.portHolders.size };
  }

  /** SetDefaults_Service and SetDefaults_ServicePort (v1), plus the LoadBalancer ingress ipMode. */
  defaults(svc: KubeObject): void {
    const spec = specOf(svc);
    if (!spec.type) spec.type = 'ClusterIP';
    if (spec.type !== 'ExternalName' && !spec.sessionAffinity) spec.sessionAffinity = 'None';
    if (spec.sessionAffinity === 'ClientIP' && !isObject(spec.sessionAffinityConfig)) {
      spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10800 } };
    }
    for (const p of ports(spec)) {
      if (!p.protocol) p.protocol = 'TCP';
      if (p.targetPort === undefined || p.targetPort === 0 || p.targetPort === '') p.targetPort = p.port;
    }
    if ((spec.type === 'NodePort' || spec.type === 'LoadBalancer') && !spec.externalTrafficPolicy) spec.externalTrafficPolicy = 'Cluster';
    if (spec.type !== 'ExternalName' && spec.internalTrafficPolicy === undefined) spec.internalTrafficPolicy = 'Cluster';
    if (spec.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts === undefined) spec.allocateLoadBalancerNodePorts = true;
    const ingress = isObject(svc.status) && isObject(svc.status.loadBalancer) ? svc.status.loadBalancer.ingress : undefined;
    if (Array.isArray(ingress)) {
      for (const i of ingress) if (isObject(i) && i.ip && i.ipMode === undefined) i.ipMode = 'VIP';
    }
  }

  /** PrepareForCreate: a new Service has an empty status, whatever the client sent. */
  prepareForCreate(svc: KubeObject): void {
    svc.status = { loadBalancer: {} };
  }

  /** PrepareForUpdate: the main resource cannot change status. */
  prepareForUpdate(svc: KubeObject, old: KubeObject): void {
    svc.status = old.status ?? { loadBalancer: {} };
  }

  /** The index entry of a stored Service: its namespace/name, as the store keys it. */
  private static holderOf(s: Readonly<KubeObject>): string {
    return `${s.metadata.namespace ?? ''}/${s.metadata.name ?? ''}`;
  }

  /** Adds or removes what a stored Service holds to or from the index. */
  private index(s: Readonly<KubeObject>, add: boolean): void {
    const holder = ServiceStrategy.holderOf(s);
    const { ips, ports: held } = allocatedBy(s);
    for (const ip of ips) {
      if (add) this.ipHolders.add(ip, holder);
      else this.ipHolders.remove(ip, holder);
    }
    for (const p of held) {
      if (add) this.portHolders.add(p, holder);
      else this.portHolders.remove(p, holder);
    }
  }

  /** A ClusterIP freed in storage: allocation may look below the hint again. */
  private ipFreed(ip: string): void {
    const p = ipToBigInt(ip);
    if (p && p.value < this.ipHint[p.family] && p.value >= this.ranges[p.family].first) this.ipHint[p.family] = p.value;
  }

  /** A node port freed in storage. */
  private portFreed(port: number): void {
    if (port < this.portHint && port >= this.network.nodePorts[0]) this.portHint = port;
  }

  /**
   * What a request must treat as taken: what it took itself, what in-flight requests reserved,
   * and what stored Services hold, except the Service being updated (its own allocations are
   * its to keep or give up).
   */
  private takenIps(exclude?: KubeObject): Taken<string> {
    const own = new Set<string>();
    const holder = exclude ? ServiceStrategy.holderOf(exclude) : undefined;
    return {
      has: (ip) => own.has(ip) || this.pendingIps.has(ip) || this.ipHolders.heldByOther(ip, holder),
      add: (ip) => {
        own.add(ip);
      },
    };
  }

  private takenPorts(exclude?: KubeObject): Taken<number> {
    const own = new Set<number>();
    const holder = exclude ? ServiceStrategy.holderOf(exclude) : undefined;
    return {
      has: (p) => own.has(p) || this.pendingPorts.has(p) || this.portHolders.heldByOther(p, holder),
      add: (p) => {
        own.add(p);
      },
    };
  }

  /**
   * BeginCreate/BeginUpdate: keep what the old object had (patchAllocatedValues), drop what the
   * new type does not use, infer ipFamilies/ipFamilyPolicy and allocate ClusterIPs, node ports
   * and the health check node port. Throws FieldErrors when a requested IP or port
   * cannot be had.
   */
  allocate(svc: KubeObject, old: KubeObject | undefined): Reservation {
    const spec = specOf(svc);
    const oldSpec = old ? specOf(old) : undefined;
    if (oldSpec) {
      this.keepAllocated(spec, oldSpec);
      this.dropTypeDependentFields(spec, oldSpec);
    }
    const errs: FieldError[] = [];
    const reservedIps: string[] = [];
    const reservedPorts: number[] = [];
    const release = (): void => {
      for (const ip of reservedIps) this.pendingIps.delete(ip);
      for (const p of reservedPorts) this.pendingPorts.delete(p);
    };

    if (needsClusterIp(spec)) {
      this.normalizeClusterIps(spec, errs);
      this.inferFamilies(spec, oldSpec, errs);
      if (errs.length === 0 && !isHeadless(spec)) {
        const ips = strings(spec.clusterIPs);
        const families = strings(spec.ipFamilies) as Family[];
        const taken = this.takenIps(old);
        families.forEach((family, i) => {
          const requested = ips[i];
          if (requested !== undefined) {
            if (oldSpec && strings(oldSpec.clusterIPs).includes(requested)) return;
            const r = this.ranges[family];
            const p = ipToBigInt(requested);
            if (!p || p.value < r.first || p.value > r.last) {
              errs.push({
                type: 'Invalid',
                field: 'spec.clusterIPs',
                value: ips,
                detail: `failed to allocate IP ${requested}: the provided IP (${requested}) is not in the valid range. The range of valid IPs is ${r.cidr}`,
              });
            } else if (taken.has(canonicalIp(requested))) {
              errs.push({ type: 'Invalid', field: 'spec.clusterIPs', value: ips, detail: `failed to allocate IP ${requested}: provided IP is already allocated` });
            } else {
              this.pendingIps.add(canonicalIp(requested));
              reservedIps.push(canonicalIp(requested));
            }
            return;
          }
          const ip = this.nextIp(family, taken, old);
          if (ip === undefined) {
            errs.push({ type: 'Invalid', field: 'spec.clusterIPs', value: ips, detail: `failed to allocate a serviceIP: range is full` });
            return;
          }
          taken.add(ip);
          this.pendingIps.add(ip);
          reservedIps.push(ip);
          ips[i] = ip;
        });
        spec.clusterIPs = ips;
        if (ips[0] !== undefined) spec.clusterIP = ips[0];
      } else if (isHeadless(spec)) {
        spec.clusterIP = 'None';
        spec.clusterIPs = ['None'];
      }
    }

    const [lo, hi] = this.network.nodePorts;
    const takenPorts = this.takenPorts(old);
    const oldNodePorts = new Set(oldSpec ? ports(oldSpec).map((p) => p.nodePort) : []);
    const claim = (field: string, requested: unknown): number | undefined => {
      if (typeof requested === 'number' && requested !== 0) {
        if (oldNodePorts.has(requested) || requested === oldSpec?.healthCheckNodePort) return requested;
        if (requested < lo || requested > hi) {
          errs.push({ type: 'Invalid', field, value: requested, detail: `provided port is not in the valid range. The range of valid ports is ${lo}-${hi}` });
        } else if (takenPorts.has(requested)) {
          errs.push({ type: 'Invalid', field, value: requested, detail: 'provided port is already allocated' });
        } else {
          takenPorts.add(requested);
          this.pendingPorts.add(requested);
          reservedPorts.push(requested);
        }
        return requested;
      }
      const p = this.nextPort(takenPorts, old);
      if (p !== undefined) {
        takenPorts.add(p);
        this.pendingPorts.add(p);
        reservedPorts.push(p);
        return p;
      }
      errs.push({ type: 'Invalid', field, value: 0, detail: 'range is full' });
      return undefined;
    };
    if (needsNodePorts(spec)) {
      ports(spec).forEach((p, i) => {
        const got = claim(`spec.ports[${i}].nodePort`, p.nodePort);
        if (got !== undefined) p.nodePort = got;
      });
    }
    if (needsHealthCheckPort(spec)) {
      const got = claim('spec.healthCheckNodePort', spec.healthCheckNodePort);
      if (got !== undefined) spec.healthCheckNodePort = got;
    }
    if (errs.length) {
      release();
      throw new FieldErrors(errs);
    }
    return { release };
  }

  /**
   * The lowest free address of the family's range. Everything below the hint is held in
   * storage, so the search starts there; below it only the updated Service's own addresses can
   * be free for this request.
   */
  private nextIp(family: Family, taken: Taken<string>, old: KubeObject | undefined): string | undefined {
    const r = this.ranges[family];
    let hint = this.ipHint[family];
    while (hint <= r.last && this.ipHolders.has(bigIntToIp(family, hint))) hint++;
    this.ipHint[family] = hint;
    let best: bigint | undefined;
    for (let v = hint; v <= r.last; v++) {
      if (!taken.has(bigIntToIp(family, v))) {
        best = v;
        break;
      }
    }
    for (const ip of old ? allocatedBy(old).ips : []) {
      const p = ipToBigInt(ip);
      if (p && p.family === family && p.value >= r.first && p.value < hint && (best === undefined || p.value < best) && !taken.has(ip)) best = p.value;
    }
    return best === undefined ? undefined : bigIntToIp(family, best);
  }

  /** The lowest free node port; see nextIp. */
  private nextPort(taken: Taken<number>, old: KubeObject | undefined): number | undefined {
    const [lo, hi] = this.network.nodePorts;
    let hint = Math.max(this.portHint, lo);
    while (hint <= hi && this.portHolders.has(hint)) hint++;
    this.portHint = hint;
    let best: number | undefined;
    for (let p = hint; p <= hi; p++) {
      if (!taken.has(p)) {
        best = p;
        break;
      }
    }
    for (const p of old ? allocatedBy(old).ports : []) {
      if (p >= lo && p < hint && (best === undefined || p < best) && !taken.has(p)) best = p;
    }
    return best;
  }

  /** patchAllocatedValues: a client that omits allocated values keeps them. */
  private keepAllocated(spec: Spec, old: Spec): void {
    if (needsClusterIp(old) && needsClusterIp(spec)) {
      if (!spec.clusterIP && old.clusterIP) spec.clusterIP = old.clusterIP;
      if (strings(spec.clusterIPs).length === 0 && strings(old.clusterIPs).length > 0) spec.clusterIPs = old.clusterIPs;
    }
    if (needsNodePorts(old) && needsNodePorts(spec)) {
      const byName = new Map(ports(old).map((p) => [String(p.name ?? ''), p.nodePort]));
      const used = new Set(
        ports(spec)
          .map((p) => p.nodePort)
          .filter((n) => typeof n === 'number' && n > 0),
      );
      for (const p of ports(spec)) {
        const previous = byName.get(String(p.name ?? ''));
        if (!p.nodePort && typeof previous === 'number' && !used.has(previous)) p.nodePort = previous;
      }
    }
    if (needsHealthCheckPort(old) && needsHealthCheckPort(spec) && !spec.healthCheckNodePort) {
      spec.healthCheckNodePort = old.healthCheckNodePort;
    }
  }

  /** dropTypeDependentFields: a type change clears what the new type cannot have, if unchanged. */
  private dropTypeDependentFields(spec: Spec, old: Spec): void {
    if (spec.type === 'ExternalName' && old.type !== 'ExternalName') {
      if (jsonEqual(spec.clusterIPs, old.clusterIPs) || spec.clusterIP === old.clusterIP) {
        delete spec.clusterIP;
        delete spec.clusterIPs;
      }
      if (jsonEqual(spec.ipFamilies, old.ipFamilies)) delete spec.ipFamilies;
      if (spec.ipFamilyPolicy === old.ipFamilyPolicy) delete spec.ipFamilyPolicy;
    }
    if (needsNodePorts(old) && !needsNodePorts(spec)) {
      const oldPorts = new Set(ports(old).map((p) => p.nodePort));
      for (const p of ports(spec)) if (oldPorts.has(p.nodePort)) delete p.nodePort;
    }
    if (needsHealthCheckPort(old) && !needsHealthCheckPort(spec) && spec.healthCheckNodePort === old.healthCheckNodePort) {
      delete spec.healthCheckNodePort;
    }
    if (spec.type !== 'LoadBalancer') {
      if (old.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts === old.allocateLoadBalancerNodePorts) delete spec.allocateLoadBalancerNodePorts;
      if (old.type === 'LoadBalancer' && spec.loadBalancerClass === old.loadBalancerClass) delete spec.loadBalancerClass;
    }
    if (spec.type !== 'NodePort' && spec.type !== 'LoadBalancer' && spec.externalTrafficPolicy === old.externalTrafficPolicy) {
      delete spec.externalTrafficPolicy;
    }
  }

  /** Keeps clusterIP and clusterIPs[0] in step, as normalizeClusterIPs does. */
  private normalizeClusterIps(spec: Spec, errs: FieldError[]): void {
    const ips = strings(spec.clusterIPs);
    if (ips.length === 0 && typeof spec.clusterIP === 'string' && spec.clusterIP !== '') spec.clusterIPs = [spec.clusterIP];
    else if (ips.length > 0 && (spec.clusterIP === undefined || spec.clusterIP === '')) spec.clusterIP = ips[0];
    else if (ips.length > 0 && spec.clusterIP !== ips[0]) {
      errs.push({ type: 'Invalid', field: 'spec.clusterIPs', value: ips, detail: 'first value must match `clusterIP`' });
    }
    for (const [i, ip] of strings(spec.clusterIPs).entries()) {
      if (ip === 'None' && i === 0) continue;
      if (!isIpAddress(ip)) errs.push({ type: 'Invalid', field: `spec.clusterIPs[${i}]`, value: ip, detail: 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)' });
    }
  }

  /** initIPFamilyFields: ipFamilyPolicy defaults to SingleStack (or the old value on update). */
  private inferFamilies(spec: Spec, old: Spec | undefined, errs: FieldError[]): void {
    if (spec.ipFamilyPolicy === undefined || spec.ipFamilyPolicy === null) {
      spec.ipFamilyPolicy = old?.ipFamilyPolicy ?? 'SingleStack';
    }
    const policy = spec.ipFamilyPolicy;
    if (typeof policy !== 'string' || !POLICIES.includes(policy)) {
      errs.push({ type: 'NotSupported', field: 'spec.ipFamilyPolicy', value: policy, supported: POLICIES });
      return;
    }
    const families = strings(spec.ipFamilies);
    for (const [i, f] of families.entries()) {
      if (f !== 'IPv4' && f !== 'IPv6') errs.push({ type: 'NotSupported', field: `spec.ipFamilies[${i}]`, value: f, supported: ['IPv4', 'IPv6'] });
    }
    if (families.length === 2 && families[0] === families[1]) errs.push({ type: 'Duplicate', field: 'spec.ipFamilies[1]', value: families[1] });
    if (families.length > 2) errs.push({ type: 'Invalid', field: 'spec.ipFamilies', value: families, detail: 'may specify no more than one IP for each IP family' });
    const ips = strings(spec.clusterIPs).filter((ip) => ip !== 'None');
    if (policy === 'SingleStack') {
      if (ips.length === 2)
        errs.push({
          type: 'Invalid',
          field: 'spec.ipFamilyPolicy',
          value: policy,
          detail: "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
        });
      if (families.length === 2)
        errs.push({
          type: 'Invalid',
          field: 'spec.ipFamilyPolicy',
          value: policy,
          detail: "must be 'RequireDualStack' or 'PreferDualStack' when multiple 'ipFamilies' are specified",
        });
    }
    if (errs.length) return;
    ips.forEach((ip, i) => {
      const fam = familyOf(ip);
      if (fam === undefined) return;
      if (families[i] === undefined) families[i] = fam;
      else if (families[i] !== fam) {
        errs.push({ type: 'Invalid', field: `spec.clusterIPs[${i}]`, value: ips, detail: `expected an ${families[i]} value as indicated by \`ipFamilies[${i}]\`` });
      }
    });
    if (isHeadless(spec) && families.length === 0 && !isObject(spec.selector)) return;
    if (families.length === 0) families.push(this.network.primaryFamily);
    if ((policy === 'RequireDualStack' || policy === 'PreferDualStack') && families.length < 2) {
      families.push(families[0] === 'IPv4' ? 'IPv6' : 'IPv4');
    }
    spec.ipFamilies = families;
  }

  /** ValidateService / ValidateServiceUpdate (the parts that matter to load balancers). */
  validate(svc: KubeObject, old: KubeObject | undefined): FieldError[] {
    const spec = specOf(svc);
    const errs: FieldError[] = [];
    const type = spec.type;
    if (typeof type !== 'string' || !TYPES.includes(type)) {
      errs.push({ type: 'NotSupported', field: 'spec.type', value: type, supported: TYPES });
    }
    const ps = ports(spec);
    if (type === 'ExternalName') {
      const name = spec.externalName;
      if (typeof name !== 'string' || name === '') errs.push({ type: 'Required', field: 'spec.externalName' });
      else if (!isDns1123Subdomain(name.replace(/\.$/, ''))) errs.push({ type: 'Invalid', field: 'spec.externalName', value: name, detail: NAME_MESSAGES.dns1123Subdomain });
      if (spec.clusterIP) errs.push({ type: 'Forbidden', field: 'spec.clusterIPs', detail: 'may not be set for ExternalName services' });
    } else if (ps.length === 0 && !isHeadless(spec)) {
      errs.push({ type: 'Required', field: 'spec.ports' });
    }
    const names = new Set<string>();
    const keys = new Set<string>();
    ps.forEach((p, i) => {
      const f = `spec.ports[${i}]`;
      const name = p.name;
      if (ps.length > 1 && (name === undefined || name === '')) errs.push({ type: 'Required', field: `${f}.name` });
      if (typeof name === 'string' && name !== '') {
        if (!isDns1123Label(name)) errs.push({ type: 'Invalid', field: `${f}.name`, value: name, detail: NAME_MESSAGES.dns1123Label });
        if (names.has(name)) errs.push({ type: 'Duplicate', field: `${f}.name`, value: name });
        names.add(name);
      }
      if (typeof p.port !== 'number' || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
        errs.push({ type: 'Invalid', field: `${f}.port`, value: p.port, detail: 'must be between 1 and 65535, inclusive' });
      }
      if (typeof p.protocol !== 'string' || !PROTOCOLS.includes(p.protocol)) {
        errs.push({ type: 'NotSupported', field: `${f}.protocol`, value: p.protocol, supported: PROTOCOLS });
      }
      const key = `${String(p.port)}/${String(p.protocol)}`;
      if (keys.has(key)) errs.push({ type: 'Duplicate', field: f, value: { port: p.port, protocol: p.protocol } });
      keys.add(key);
      const tp = p.targetPort;
      if (
        typeof tp === 'number' ? tp < 1 || tp > 65535 || !Number.isInteger(tp) : typeof tp !== 'string' || !/^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/.test(tp) || !/[a-z]/.test(tp)
      ) {
        errs.push({ type: 'Invalid', field: `${f}.targetPort`, value: tp, detail: 'must be between 1 and 65535, inclusive' });
      }
      if (p.nodePort !== undefined && type !== 'NodePort' && type !== 'LoadBalancer') {
        errs.push({ type: 'Forbidden', field: `${f}.nodePort`, detail: "may not be used when `type` is 'ClusterIP'" });
      }
    });
    if (spec.loadBalancerIP !== undefined && spec.loadBalancerIP !== '') {
      if (typeof spec.loadBalancerIP !== 'string' || !isIpAddress(spec.loadBalancerIP)) {
        errs.push({ type: 'Invalid', field: 'spec.loadBalancerIP', value: spec.loadBalancerIP, detail: 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)' });
      } else if (type !== 'LoadBalancer') {
        errs.push({ type: 'Forbidden', field: 'spec.loadBalancerIP', detail: "may only be used when `type` is 'LoadBalancer'" });
      }
    }
    strings(spec.loadBalancerSourceRanges).forEach((cidr, i) => {
      if (!isCidr(cidr.trim()))
        errs.push({ type: 'Invalid', field: `spec.loadBalancerSourceRanges[${i}]`, value: cidr, detail: 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)' });
    });
    if (strings(spec.loadBalancerSourceRanges).length && type !== 'LoadBalancer') {
      errs.push({ type: 'Forbidden', field: 'spec.loadBalancerSourceRanges', detail: "may only be used when `type` is 'LoadBalancer'" });
    }
    if (spec.loadBalancerClass !== undefined && spec.loadBalancerClass !== null) {
      if (type !== 'LoadBalancer') errs.push({ type: 'Forbidden', field: 'spec.loadBalancerClass', detail: "may only be used when `type` is 'LoadBalancer'" });
      else if (typeof spec.loadBalancerClass !== 'string' || !isQualifiedName(spec.loadBalancerClass)) {
        errs.push({ type: 'Invalid', field: 'spec.loadBalancerClass', value: spec.loadBalancerClass, detail: NAME_MESSAGES.qualifiedName });
      }
    }
    strings(spec.externalIPs).forEach((ip, i) => {
      if (!isIpAddress(ip)) errs.push({ type: 'Invalid', field: `spec.externalIPs[${i}]`, value: ip, detail: 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)' });
    });
    if (spec.externalTrafficPolicy !== undefined) {
      if (type !== 'NodePort' && type !== 'LoadBalancer') {
        errs.push({
          type: 'Invalid',
          field: 'spec.externalTrafficPolicy',
          value: spec.externalTrafficPolicy,
          detail: "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
        });
      } else if (spec.externalTrafficPolicy !== 'Cluster' && spec.externalTrafficPolicy !== 'Local') {
        errs.push({ type: 'NotSupported', field: 'spec.externalTrafficPolicy', value: spec.externalTrafficPolicy, supported: ['Cluster', 'Local'] });
      }
    }
    if (spec.internalTrafficPolicy !== undefined && spec.internalTrafficPolicy !== 'Cluster' && spec.internalTrafficPolicy !== 'Local') {
      errs.push({ type: 'NotSupported', field: 'spec.internalTrafficPolicy', value: spec.internalTrafficPolicy, supported: ['Cluster', 'Local'] });
    }
    if (spec.sessionAffinity !== undefined && spec.sessionAffinity !== 'None' && spec.sessionAffinity !== 'ClientIP') {
      errs.push({ type: 'NotSupported', field: 'spec.sessionAffinity', value: spec.sessionAffinity, supported: ['ClientIP', 'None'] });
    }
    errs.push(...validateLabelMap(spec.selector, 'spec.selector'));
    if (old) {
      const oldSpec = specOf(old);
      const oldIps = strings(oldSpec.clusterIPs);
      const newIps = strings(spec.clusterIPs);
      if (needsClusterIp(spec) && needsClusterIp(oldSpec) && oldIps.length && oldIps[0] !== newIps[0]) {
        errs.push({ type: 'Invalid', field: 'spec.clusterIPs[0]', value: newIps, detail: 'may not change once set' });
      }
      if (oldSpec.type === 'LoadBalancer' && type === 'LoadBalancer' && oldSpec.loadBalancerClass !== undefined && spec.loadBalancerClass !== oldSpec.loadBalancerClass) {
        errs.push({ type: 'Invalid', field: 'spec.loadBalancerClass', value: spec.loadBalancerClass ?? null, detail: 'may not change once set' });
      }
    }
    errs.push(...this.validateStatusFields(svc));
    return errs;
  }

  /** ValidateServiceStatusUpdate: ingress entries must carry valid IPs. */
  validateStatus(svc: KubeObject): FieldError[] {
    return this.validateStatusFields(svc);
  }

  private validateStatusFields(svc: KubeObject): FieldError[] {
    const errs: FieldError[] = [];
    const lb = isObject(svc.status) && isObject(svc.status.loadBalancer) ? svc.status.loadBalancer : {};
    const ingress = Array.isArray(lb.ingress) ? lb.ingress : [];
    ingress.forEach((i, n) => {
      if (!isObject(i)) return;
      const f = `status.loadBalancer.ingress[${n}]`;
      if (i.ip !== undefined && i.ip !== '' && (typeof i.ip !== 'string' || !isIpAddress(i.ip))) {
        errs.push({ type: 'Invalid', field: `${f}.ip`, value: i.ip, detail: 'must be a valid IP address' });
      }
      if (i.hostname !== undefined && i.hostname !== '' && (typeof i.hostname !== 'string' || !isDns1123Subdomain(i.hostname))) {
        errs.push({ type: 'Invalid', field: `${f}.hostname`, value: i.hostname, detail: NAME_MESSAGES.dns1123Subdomain });
      }
      if (i.ipMode !== undefined) {
        if (!i.ip) errs.push({ type: 'Forbidden', field: `${f}.ipMode`, detail: 'may not be specified when `ip` is not set' });
        else if (i.ipMode !== 'VIP' && i.ipMode !== 'Proxy') errs.push({ type: 'NotSupported', field: `${f}.ipMode`, value: i.ipMode, supported: ['Proxy', 'VIP'] });
      }
    });
    return errs;
  }

  /** GetWarningsForService: fields the server ignores for this type. */
  warnings(svc: KubeObject): string[] {
    const spec = specOf(svc);
    const out: string[] = [];
    if (spec.type === 'ExternalName' && strings(spec.externalIPs).length) out.push('spec.externalIPs is ignored when spec.type is "ExternalName"');
    if (spec.type !== 'ExternalName' && spec.externalName) out.push('spec.externalName is ignored when spec.type is not "ExternalName"');
    return out;
  }
}
