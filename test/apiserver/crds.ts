/**
 * CustomResourceDefinitions: their own validation and defaulting, and the resource types a CRD
 * makes the server serve (one per served version, with its schema, status subresource,
 * printer columns and selectable fields), so that `kubectl apply -f manifests/crds` makes the
 * project's custom resources exist the way a cluster does.
 */
import type { FieldError } from './errors.js';
import { isObject, jsonEqual, type KubeObject } from './object.js';
import { ALL_VERBS, identityConversion, type PrinterColumn, type ResourceType, type Strategy } from './resources.js';
import { applyDefaults, prune, validateSchema, type Schema } from './schema.js';
import { customResourceTable, evalJsonPath, parseJsonPath } from './tables.js';
import { isDns1123Subdomain, isDns1035Label, NAME_MESSAGES } from './validation.js';

/** The finalizer that makes deleting a CRD delete its objects first. */
export const CRD_CLEANUP_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';

interface CrdNames {
  plural?: string;
  singular?: string;
  kind?: string;
  listKind?: string;
  shortNames?: string[];
  categories?: string[];
}

interface CrdVersion {
  name?: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: Schema };
  subresources?: { status?: unknown; scale?: unknown };
  additionalPrinterColumns?: PrinterColumn[];
  selectableFields?: { jsonPath: string }[];
}

interface CrdSpec {
  group?: string;
  scope?: string;
  names?: CrdNames;
  versions?: CrdVersion[];
  conversion?: { strategy?: string };
}

function specOf(crd: KubeObject): CrdSpec {
  return (isObject(crd.spec) ? crd.spec : {}) as CrdSpec;
}

/** The CRD strategy: defaults, validation and immutability rules of apiextensions. */
export const crdStrategy: Strategy = {
  defaults(crd) {
    const spec = specOf(crd);
    const names = spec.names ?? {};
    if (names.kind && !names.singular) names.singular = names.kind.toLowerCase();
    if (names.kind && !names.listKind) names.listKind = `${names.kind}List`;
    if (!spec.conversion) spec.conversion = { strategy: 'None' };
    for (const v of spec.versions ?? []) {
      if (!v.additionalPrinterColumns) continue;
      for (const c of v.additionalPrinterColumns) c.priority ??= 0;
    }
  },
  prepareForCreate(crd) {
    const storage = (specOf(crd).versions ?? []).find((v) => v.storage)?.name;
    crd.status = { acceptedNames: { plural: '', kind: '' }, conditions: [], storedVersions: storage ? [storage] : [] };
  },
  prepareForUpdate(crd, old) {
    crd.status = old.status;
    // A new storage version is recorded as stored, as the apiextensions server does.
    const storage = (specOf(crd).versions ?? []).find((v) => v.storage)?.name;
    const status = isObject(crd.status) ? { ...crd.status } : {};
    const stored = Array.isArray(status.storedVersions) ? [...(status.storedVersions as string[])] : [];
    if (storage && !stored.includes(storage)) stored.push(storage);
    status.storedVersions = stored;
    crd.status = status;
  },
  validate(crd, old) {
    const spec = specOf(crd);
    const errs: FieldError[] = [];
    const names = spec.names ?? {};
    if (!spec.group) errs.push({ type: 'Required', field: 'spec.group' });
    else if (!spec.group.includes('.') || !isDns1123Subdomain(spec.group)) {
      errs.push({ type: 'Invalid', field: 'spec.group', value: spec.group, detail: 'should be a domain with at least one dot' });
    }
    if (!names.plural) errs.push({ type: 'Required', field: 'spec.names.plural' });
    else if (!isDns1035Label(names.plural)) errs.push({ type: 'Invalid', field: 'spec.names.plural', value: names.plural, detail: NAME_MESSAGES.dns1035Label });
    if (!names.kind) errs.push({ type: 'Required', field: 'spec.names.kind' });
    if (names.plural && spec.group && crd.metadata.name !== `${names.plural}.${spec.group}`) {
      errs.push({ type: 'Invalid', field: 'metadata.name', value: crd.metadata.name, detail: 'must be spec.names.plural+"."+spec.group' });
    }
    if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
      errs.push({ type: 'NotSupported', field: 'spec.scope', value: spec.scope ?? '', supported: ['Cluster', 'Namespaced'] });
    }
    const versions = spec.versions ?? [];
    if (versions.length === 0) errs.push({ type: 'Invalid', field: 'spec.versions', value: versions, detail: 'must have exactly one version marked as storage version' });
    else if (versions.filter((v) => v.storage).length !== 1) {
      errs.push({ type: 'Invalid', field: 'spec.versions', value: versions.map((v) => v.name), detail: 'must have exactly one version marked as storage version' });
    }
    versions.forEach((v, i) => {
      if (!v.name) errs.push({ type: 'Required', field: `spec.versions[${i}].name` });
      if (!v.schema?.openAPIV3Schema) errs.push({ type: 'Required', field: `spec.versions[${i}].schema.openAPIV3Schema`, detail: 'schemas are required' });
      (v.additionalPrinterColumns ?? []).forEach((c, j) => {
        if (!c.jsonPath || !parseJsonPath(c.jsonPath)) {
          errs.push({ type: 'Invalid', field: `spec.versions[${i}].additionalPrinterColumns[${j}].jsonPath`, value: c.jsonPath ?? '', detail: 'must be a simple json path' });
        }
      });
    });
    if (old) {
      const before = specOf(old);
      if (before.scope !== spec.scope) errs.push({ type: 'Invalid', field: 'spec.scope', value: spec.scope ?? '', detail: 'field is immutable' });
      if (before.group !== spec.group) errs.push({ type: 'Invalid', field: 'spec.group', value: spec.group ?? '', detail: 'field is immutable' });
    }
    return errs;
  },
};

/** Whether the CRD is accepted and serving (the controller has set Established). */
export function isEstablished(crd: KubeObject): boolean {
  const conditions = isObject(crd.status) && Array.isArray(crd.status.conditions) ? crd.status.conditions : [];
  return conditions.some((c) => isObject(c) && c.type === 'Established' && c.status === 'True');
}

/** The status the CRD controller writes once names are accepted. */
export function establishedStatus(crd: KubeObject, now: string): Record<string, unknown> {
  const status = isObject(crd.status) ? { ...crd.status } : {};
  const condition = (type: string, reason: string, message: string): Record<string, unknown> => ({ type, status: 'True', lastTransitionTime: now, reason, message });
  status.acceptedNames = specOf(crd).names ?? {};
  status.conditions = [condition('NamesAccepted', 'NoConflicts', 'no conflicts found'), condition('Established', 'InitialNamesAccepted', 'the initial names have been accepted')];
  return status;
}

/** One version's custom resource strategy: prune, default and validate against its schema. */
function customResourceStrategy(schema: Schema | undefined, statusSubresource: boolean): Strategy {
  return {
    defaults(obj) {
      if (!schema) return [];
      const dropped = prune(obj, schema);
      applyDefaults(obj, schema);
      return dropped;
    },
    prepareForCreate(obj) {
      if (statusSubresource) delete obj.status;
    },
    prepareForUpdate(obj, old) {
      if (!statusSubresource) return;
      if (old.status === undefined) delete obj.status;
      else obj.status = old.status;
    },
    validate(obj) {
      return schema ? validateSchema(obj, schema) : [];
    },
  };
}

/** The served versions of a CRD as resource types (empty while the CRD is malformed). */
export function typesFromCrd(crd: KubeObject): ResourceType[] {
  const spec = specOf(crd);
  const names = spec.names ?? {};
  if (!spec.group || !names.plural || !names.kind) return [];
  const storage = `${names.plural}.${spec.group}`;
  const storageVersion = (spec.versions ?? []).find((v) => v.storage)?.name ?? spec.versions?.[0]?.name ?? 'v1';
  return (spec.versions ?? [])
    .filter((v): v is CrdVersion & { name: string } => v.served !== false && typeof v.name === 'string')
    .map((v) => {
      const status = v.subresources?.status !== undefined && v.subresources.status !== null;
      const selectable = (v.selectableFields ?? []).map((f) => ({ label: f.jsonPath.replace(/^\./, ''), steps: parseJsonPath(f.jsonPath) ?? [] }));
      const t: ResourceType = {
        group: spec.group as string,
        version: v.name,
        resource: names.plural as string,
        singular: names.singular ?? (names.kind as string).toLowerCase(),
        kind: names.kind as string,
        listKind: names.listKind ?? `${names.kind}List`,
        namespaced: spec.scope !== 'Cluster',
        shortNames: names.shortNames ?? [],
        categories: names.categories ?? [],
        verbs: [...ALL_VERBS],
        storage,
        statusSubresource: status,
        nameRule: 'dns1123Subdomain',
        allowCreateOnUpdate: false,
        allowUnconditionalUpdate: false,
        tracksGeneration: true,
        // Objects are read in the version asked for and stored in the storage version.
        toVersion: identityConversion(spec.group as string, v.name).toVersion,
        fromVersion: identityConversion(spec.group as string, storageVersion).fromVersion,
        strategy: customResourceStrategy(v.schema?.openAPIV3Schema, status),
        table: customResourceTable(v.additionalPrinterColumns ?? []),
        crd: crd.metadata.name ?? storage,
      };
      if (selectable.length) {
        t.fields = (o) =>
          Object.fromEntries(
            selectable.map(({ label, steps }) => {
              const found = evalJsonPath(o, steps)[0];
              return [label, found === undefined || found === null ? '' : String(found)];
            }),
          );
      }
      return t;
    });
}

/** Whether two CRD specs serve the same types (so an update needs no re-registration). */
export function sameServing(a: KubeObject, b: KubeObject): boolean {
  return jsonEqual(a.spec, b.spec);
}
