/**
 * What the server serves: one `ResourceType` per (group, version, resource), built in or
 * derived from a CustomResourceDefinition, and the `ResourceRegistry` that finds them by URL
 * segment, by kind, or by storage key. Discovery, routing, admission rules and garbage
 * collection all read this one table, so they cannot disagree on what exists.
 */
import type { FieldError } from './errors.js';
import { apiVersionOf, type KubeObject } from './object.js';
import type { PatchMeta } from './patch.js';
import type { NameRule } from './validation.js';

/** The verbs of a fully writable resource, in discovery's order. */
export const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] as const;

/** A column of `kubectl get` output (metav1.TableColumnDefinition plus where CRs read it). */
export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  /** For custom resources: a simple JSONPath into the object (additionalPrinterColumns). */
  jsonPath?: string;
}

/** Columns and cells of a resource's table, as the server-side printers produce them. */
export interface TableConvertor {
  columns: PrinterColumn[];
  cells(obj: KubeObject, now: Date): unknown[];
}

/** Per-request facts a strategy may need. */
export interface StrategyContext {
  dryRun: boolean;
}

/**
 * Something a strategy reserved (Service IPs, node ports) between allocation and the write:
 * released once the write has committed (storage then shows it taken) or failed.
 */
export interface Reservation {
  release(): void;
}

/**
 * Type-specific behaviour, after the apiserver's REST strategies: static defaults applied at
 * decode time (and again after each mutating webhook), allocation before validation,
 * PrepareForCreate/Update and validation.
 */
export interface Strategy {
  /**
   * SetDefaults_X, applied to every incoming object and after every webhook patch. Custom
   * resources also prune here; the paths of dropped unknown fields are returned.
   */
  defaults?(obj: KubeObject): string[] | void;
  /** Allocations done in BeginCreate/BeginUpdate (ClusterIPs, node ports). */
  allocate?(obj: KubeObject, old: KubeObject | undefined, ctx: StrategyContext): Reservation;
  /** PrepareForCreate: what a client may not set on create (status, system fields). */
  prepareForCreate?(obj: KubeObject): void;
  /** PrepareForUpdate on the main resource: what an update may not change. */
  prepareForUpdate?(obj: KubeObject, old: KubeObject): void;
  /** Validate / ValidateUpdate. */
  validate?(obj: KubeObject, old: KubeObject | undefined): FieldError[];
  /** Warnings returned to the client (admission warnings aside), e.g. for ignored fields. */
  warnings?(obj: KubeObject, old: KubeObject | undefined): string[];
  /** PrepareForUpdate of the status subresource, after status and metadata were taken from old. */
  prepareForStatusUpdate?(obj: KubeObject, old: KubeObject): void;
  /** ValidateStatusUpdate; defaults to `validate`. */
  validateStatus?(obj: KubeObject, old: KubeObject): FieldError[];
}

/** One served (group, version, resource). */
export interface ResourceType {
  group: string;
  version: string;
  /** Plural, the URL segment. */
  resource: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** Storage key; several served versions (or APIs, as for events) share one. */
  storage: string;
  /** Whether `/status` exists and the main resource ignores status writes. */
  statusSubresource: boolean;
  /** Strategic-merge metadata; undefined when the type does not accept SMP (custom resources). */
  patchMeta?: PatchMeta;
  nameRule: NameRule;
  /** PUT of a missing object creates it (services, endpoints, events, leases). */
  allowCreateOnUpdate: boolean;
  /** PUT without metadata.resourceVersion is allowed (not for custom resources). */
  allowUnconditionalUpdate: boolean;
  /** metadata.generation starts at 1 and grows with every spec change. */
  tracksGeneration: boolean;
  /** DELETE answers with the deleted object instead of a Status (services, pods, service accounts). */
  returnDeletedObject?: boolean;
  /** Finalizers the server adds when the object is deleted (a CRD's cleanup of its objects). */
  finalizersOnDelete?: string[];
  /** Selectable fields beyond metadata.name and metadata.namespace. */
  fields?(obj: KubeObject): Record<string, string>;
  /** Maps a field selector label of this API onto the stored form (events.k8s.io `regarding.*`). */
  fieldAlias?: Readonly<Record<string, string>>;
  /** Converts a stored object into this version (apiVersion at least). */
  toVersion(obj: KubeObject): KubeObject;
  /** Converts an object of this version into the stored form. */
  fromVersion(obj: KubeObject): KubeObject;
  strategy: Strategy;
  table: TableConvertor;
  /** Set for custom resources: the CRD's name. */
  crd?: string;
}

/** `group/version` of a type. */
export function apiVersionOfType(t: ResourceType): string {
  return apiVersionOf(t.group, t.version);
}

/** A group with its served versions, preferred first (what /apis lists). */
export interface ServedGroup {
  name: string;
  versions: string[];
}

/** Converts between versions by rewriting apiVersion only (conversion strategy None). */
export function identityConversion(group: string, version: string): Pick<ResourceType, 'toVersion' | 'fromVersion'> {
  const av = apiVersionOf(group, version);
  return {
    toVersion: (obj) => ({ ...obj, apiVersion: av }),
    fromVersion: (obj) => ({ ...obj, apiVersion: av }),
  };
}

/** The table of served resources; see the file comment. */
export class ResourceRegistry {
  private readonly types = new Map<string, ResourceType>();
  /** Group order as first registered; the core group is first, as in a cluster. */
  private readonly groupOrder: string[] = [];

  private static key(group: string, version: string, resource: string): string {
    return `${group}/${version}/${resource}`;
  }

  /** Adds or replaces a type. */
  add(t: ResourceType): void {
    this.types.set(ResourceRegistry.key(t.group, t.version, t.resource), t);
    if (!this.groupOrder.includes(t.group)) this.groupOrder.push(t.group);
  }

  /** Removes every version of the types derived from one CRD. */
  removeCrd(crdName: string): void {
    for (const [k, t] of this.types) if (t.crd === crdName) this.types.delete(k);
  }

  /** The type served at `/apis/group/version/resource`. */
  find(group: string, version: string, resource: string): ResourceType | undefined {
    return this.types.get(ResourceRegistry.key(group, version, resource));
  }

  /** The type of an object with this apiVersion and kind. */
  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    for (const t of this.types.values()) if (apiVersionOfType(t) === apiVersion && t.kind === kind) return t;
    return undefined;
  }

  /** The type of a kind in a group, whatever the version (owner references may name any). */
  byGroupKind(group: string, kind: string): ResourceType | undefined {
    for (const t of this.types.values()) if (t.group === group && t.kind === kind) return t;
    return undefined;
  }

  /** All served types. */
  all(): ResourceType[] {
    return [...this.types.values()];
  }

  /** One type per storage key (the first registered version), for controllers that scan storage. */
  storageTypes(): ResourceType[] {
    const seen = new Map<string, ResourceType>();
    for (const t of this.types.values()) if (!seen.has(t.storage)) seen.set(t.storage, t);
    return [...seen.values()];
  }

  /** Types of one group version, in registration order. */
  inGroupVersion(group: string, version: string): ResourceType[] {
    return this.all().filter((t) => t.group === group && t.version === version);
  }

  /** Served groups and their versions; the first version listed is the preferred one. */
  groups(): ServedGroup[] {
    const out: ServedGroup[] = [];
    for (const g of this.groupOrder) {
      const versions: string[] = [];
      for (const t of this.types.values()) if (t.group === g && !versions.includes(t.version)) versions.push(t.version);
      if (versions.length) out.push({ name: g, versions: sortVersions(versions) });
    }
    return out;
  }
}

/**
 * Kubernetes version priority: GA before beta before alpha, higher numbers first
 * (v2 > v1 > v1beta2 > v1beta1 > v1alpha1), non-conforming names last alphabetically.
 */
export function sortVersions(versions: string[]): string[] {
  const rank = (v: string): [number, number, number, string] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [3, 0, 0, v];
    const stage = m[2] === undefined ? 0 : m[2] === 'beta' ? 1 : 2;
    return [stage, -Number(m[1]), -Number(m[3] ?? 0), v];
  };
  return [...versions].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    for (let i = 0; i < 4; i++) {
      if (ra[i] !== rb[i]) return (ra[i] as number | string) < (rb[i] as number | string) ? -1 : 1;
    }
    return 0;
  });
}
