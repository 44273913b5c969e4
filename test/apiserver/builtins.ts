/**
 * The built-in resources the double serves, with what discovery says about them (short names,
 * verbs, subresources), how their names are checked, their selectable fields, their
 * strategic-merge-patch list keys and their type-specific strategies. Besides what MetalLB
 * touches, the types `kubectl apply -k manifests/` installs (RBAC, ServiceAccounts,
 * Deployments, DaemonSets) are stored, with no controllers behind them.
 */
import { CRD_CLEANUP_FINALIZER } from './crds.js';
import type { FieldError } from './errors.js';
import { isObject, timestamp, type KubeObject } from './object.js';
import type { PatchMeta } from './patch.js';
import { ALL_VERBS, identityConversion, type ResourceType, type Strategy, type TableConvertor } from './resources.js';
import { ServiceStrategy } from './services.js';
import { BUILTIN_TABLES, defaultTable } from './tables.js';
import { isIpAddress, isQualifiedName, NAME_MESSAGES, type NameRule } from './validation.js';

/** Merge keys every type shares through ObjectMeta. */
const META: PatchMeta = {
  'metadata.ownerReferences': { mergeKey: 'uid' },
  'metadata.finalizers': { merge: true },
};

/** PodSpec's strategic-merge keys under a prefix (`spec.` for pods, `spec.template.spec.` for workloads). */
function podSpecMeta(prefix: string): PatchMeta {
  const m: Record<string, { mergeKey?: string; merge?: boolean }> = {};
  for (const c of ['containers', 'initContainers', 'ephemeralContainers']) {
    m[`${prefix}${c}`] = { mergeKey: 'name' };
    m[`${prefix}${c}.ports`] = { mergeKey: 'containerPort' };
    m[`${prefix}${c}.env`] = { mergeKey: 'name' };
    m[`${prefix}${c}.volumeMounts`] = { mergeKey: 'mountPath' };
    m[`${prefix}${c}.volumeDevices`] = { mergeKey: 'devicePath' };
  }
  m[`${prefix}volumes`] = { mergeKey: 'name' };
  m[`${prefix}imagePullSecrets`] = { mergeKey: 'name' };
  m[`${prefix}hostAliases`] = { mergeKey: 'ip' };
  return m;
}

const CONDITIONS: PatchMeta = { 'status.conditions': { mergeKey: 'type' } };

interface Definition {
  group?: string;
  version?: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  status?: boolean;
  nameRule?: NameRule;
  patchMeta?: PatchMeta;
  allowCreateOnUpdate?: boolean;
  tracksGeneration?: boolean;
  fields?: (o: KubeObject) => Record<string, string>;
  fieldAlias?: Record<string, string>;
  returnDeletedObject?: boolean;
  strategy?: Strategy;
  storage?: string;
  conversion?: Pick<ResourceType, 'toVersion' | 'fromVersion'>;
  table?: TableConvertor;
}

function define(d: Definition): ResourceType {
  const group = d.group ?? '';
  const version = d.version ?? 'v1';
  const storage = d.storage ?? (group ? `${d.resource}.${group}` : d.resource);
  const t: ResourceType = {
    group,
    version,
    resource: d.resource,
    singular: d.kind.toLowerCase(),
    kind: d.kind,
    listKind: `${d.kind}List`,
    namespaced: d.namespaced,
    shortNames: d.shortNames ?? [],
    categories: d.categories ?? [],
    verbs: [...ALL_VERBS],
    storage,
    statusSubresource: d.status ?? false,
    patchMeta: { ...META, ...(d.patchMeta ?? {}) },
    nameRule: d.nameRule ?? 'dns1123Subdomain',
    allowCreateOnUpdate: d.allowCreateOnUpdate ?? false,
    allowUnconditionalUpdate: true,
    tracksGeneration: d.tracksGeneration ?? false,
    ...(d.conversion ?? identityConversion(group, version)),
    strategy: d.strategy ?? {},
    table: d.table ?? BUILTIN_TABLES[storage] ?? defaultTable,
  };
  if (d.fields) t.fields = d.fields;
  if (d.fieldAlias) t.fieldAlias = d.fieldAlias;
  if (d.returnDeletedObject) t.returnDeletedObject = true;
  return t;
}

function rec(v: unknown): Record<string, unknown> {
  return isObject(v) ? v : {};
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

/** The label every namespace carries with its own name (since Kubernetes 1.21). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

const namespaceStrategy: Strategy = {
  defaults(ns) {
    // The server sets this label itself; webhook namespaceSelectors rely on it.
    if (ns.metadata.name) ns.metadata.labels = { ...(ns.metadata.labels ?? {}), [NAMESPACE_NAME_LABEL]: ns.metadata.name };
  },
  prepareForCreate(ns) {
    ns.spec = { finalizers: ['kubernetes'] };
    ns.status = { phase: 'Active' };
  },
  prepareForUpdate(ns, old) {
    // spec.finalizers only change through the finalize subresource (the namespace controller).
    ns.spec = old.spec;
    ns.status = old.status;
  },
};

/** Status is a client's to set on create for nodes (the kubelet registers with it). */
const nodeStrategy: Strategy = {
  prepareForUpdate(node, old) {
    node.status = old.status;
  },
};

const podStrategy: Strategy = {
  defaults(pod) {
    const spec = rec(pod.spec);
    pod.spec = spec;
    spec.restartPolicy ??= 'Always';
    spec.dnsPolicy ??= 'ClusterFirst';
    spec.schedulerName ??= 'default-scheduler';
    spec.terminationGracePeriodSeconds ??= 30;
    spec.securityContext ??= {};
    for (const c of Array.isArray(spec.containers) ? spec.containers.filter(isObject) : []) {
      c.terminationMessagePath ??= '/dev/termination-log';
      c.terminationMessagePolicy ??= 'File';
      c.imagePullPolicy ??= /:latest$|^[^:]*$/.test(str(c.image)) ? 'Always' : 'IfNotPresent';
      for (const p of Array.isArray(c.ports) ? c.ports.filter(isObject) : []) p.protocol ??= 'TCP';
    }
  },
  prepareForCreate(pod) {
    pod.status = { phase: 'Pending', qosClass: 'BestEffort' };
  },
  prepareForUpdate(pod, old) {
    pod.status = old.status;
  },
  validate(pod) {
    const errs: FieldError[] = [];
    const containers = Array.isArray(rec(pod.spec).containers) ? (rec(pod.spec).containers as unknown[]) : [];
    if (containers.length === 0) errs.push({ type: 'Required', field: 'spec.containers' });
    containers.forEach((c, i) => {
      if (!str(rec(c).name)) errs.push({ type: 'Required', field: `spec.containers[${i}].name` });
      if (!str(rec(c).image)) errs.push({ type: 'Required', field: `spec.containers[${i}].image` });
    });
    return errs;
  },
};

const secretStrategy: Strategy = {
  defaults(secret) {
    secret.type ??= 'Opaque';
    // stringData is write-only: it is folded into data on the way in.
    if (isObject(secret.stringData)) {
      const data = rec(secret.data);
      for (const [k, v] of Object.entries(secret.stringData)) data[k] = Buffer.from(str(v)).toString('base64');
      secret.data = data;
      delete secret.stringData;
    }
  },
};

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

function validateConfigKeys(obj: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  for (const field of ['data', 'binaryData']) {
    for (const k of Object.keys(rec(obj[field]))) {
      if (!CONFIG_KEY.test(k) || k.length > 253) {
        errs.push({
          type: 'Invalid',
          field: `${field}[${k}]`,
          value: k,
          detail:
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        });
      }
    }
  }
  return errs;
}

const eventStrategy: Strategy = {
  validate(ev) {
    const errs: FieldError[] = [];
    const involved = rec(ev.involvedObject);
    if (involved.namespace && involved.namespace !== ev.metadata.namespace) {
      errs.push({ type: 'Invalid', field: 'involvedObject.namespace', value: involved.namespace, detail: 'does not match event.namespace' });
    }
    return errs;
  },
};

/** events.k8s.io/v1 asks more of a new event than core v1 does (ValidateEventCreate). */
const newEventStrategy: Strategy = {
  validate(ev, old) {
    const errs = eventStrategy.validate?.(ev, old) ?? [];
    if (old) return errs;
    if (!ev.eventTime) errs.push({ type: 'Required', field: 'eventTime' });
    const controller = str(ev.reportingComponent);
    if (!controller) errs.push({ type: 'Required', field: 'reportingController' });
    else if (!isQualifiedName(controller)) errs.push({ type: 'Invalid', field: 'reportingController', value: controller, detail: NAME_MESSAGES.qualifiedName });
    if (!str(ev.reportingInstance)) errs.push({ type: 'Required', field: 'reportingInstance' });
    if (!str(ev.action)) errs.push({ type: 'Required', field: 'action' });
    if (!str(ev.reason)) errs.push({ type: 'Required', field: 'reason' });
    if (ev.type !== 'Normal' && ev.type !== 'Warning') errs.push({ type: 'Invalid', field: 'type', value: ev.type ?? '', detail: 'has invalid value, expected Normal or Warning' });
    return errs;
  },
};

/** Field renames between core/v1 Event (the stored form) and events.k8s.io/v1 Event. */
const EVENT_RENAMES: [core: string, events: string][] = [
  ['involvedObject', 'regarding'],
  ['message', 'note'],
  ['source', 'deprecatedSource'],
  ['firstTimestamp', 'deprecatedFirstTimestamp'],
  ['lastTimestamp', 'deprecatedLastTimestamp'],
  ['count', 'deprecatedCount'],
  ['reportingComponent', 'reportingController'],
];

function renameFields(obj: KubeObject, pairs: [string, string][], apiVersion: string, kind: string): KubeObject {
  const out: KubeObject = { ...obj, apiVersion, kind };
  for (const [from, to] of pairs) {
    delete out[from];
    if (obj[from] !== undefined) out[to] = obj[from];
  }
  return out;
}

/** Converts events between the two APIs; both read and write the same stored objects. */
const eventsV1Conversion: Pick<ResourceType, 'toVersion' | 'fromVersion'> = {
  toVersion: (o) => renameFields(o, EVENT_RENAMES, 'events.k8s.io/v1', 'Event'),
  fromVersion: (o) =>
    renameFields(
      o,
      EVENT_RENAMES.map(([a, b]) => [b, a]),
      'v1',
      'Event',
    ),
};

function eventFields(ev: KubeObject): Record<string, string> {
  const i = rec(ev.involvedObject);
  return {
    'involvedObject.kind': str(i.kind),
    'involvedObject.namespace': str(i.namespace),
    'involvedObject.name': str(i.name),
    'involvedObject.uid': str(i.uid),
    'involvedObject.apiVersion': str(i.apiVersion),
    'involvedObject.resourceVersion': str(i.resourceVersion),
    'involvedObject.fieldPath': str(i.fieldPath),
    reason: str(ev.reason),
    reportingComponent: str(ev.reportingComponent),
    source: str(rec(ev.source).component) || str(ev.reportingComponent),
    type: str(ev.type),
  };
}

const EVENTS_V1_FIELD_ALIAS: Record<string, string> = {
  'regarding.kind': 'involvedObject.kind',
  'regarding.namespace': 'involvedObject.namespace',
  'regarding.name': 'involvedObject.name',
  'regarding.uid': 'involvedObject.uid',
  'regarding.apiVersion': 'involvedObject.apiVersion',
  'regarding.resourceVersion': 'involvedObject.resourceVersion',
  'regarding.fieldPath': 'involvedObject.fieldPath',
  reportingController: 'reportingComponent',
};

const endpointSliceStrategy: Strategy = {
  validate(slice) {
    const errs: FieldError[] = [];
    const type = slice.addressType;
    if (type !== 'IPv4' && type !== 'IPv6' && type !== 'FQDN') {
      errs.push(type === undefined ? { type: 'Required', field: 'addressType' } : { type: 'NotSupported', field: 'addressType', value: type, supported: ['FQDN', 'IPv4', 'IPv6'] });
    }
    (Array.isArray(slice.endpoints) ? slice.endpoints : []).forEach((e, i) => {
      const addresses = Array.isArray(rec(e).addresses) ? (rec(e).addresses as unknown[]) : [];
      if (addresses.length === 0) errs.push({ type: 'Required', field: `endpoints[${i}].addresses` });
      addresses.forEach((a, j) => {
        const ok = type === 'FQDN' ? typeof a === 'string' && a.length > 0 : typeof a === 'string' && isIpAddress(a) && a.includes(':') === (type === 'IPv6');
        if (!ok) errs.push({ type: 'Invalid', field: `endpoints[${i}].addresses[${j}]`, value: a, detail: `must be a valid ${String(type)} address` });
      });
    });
    return errs;
  },
};

function workloadStrategy(kind: 'Deployment' | 'DaemonSet'): Strategy {
  return {
    defaults(o) {
      const spec = rec(o.spec);
      o.spec = spec;
      if (kind === 'Deployment') spec.replicas ??= 1;
      spec.revisionHistoryLimit ??= 10;
    },
    prepareForCreate(o) {
      o.status = {};
    },
    prepareForUpdate(o, old) {
      o.status = old.status;
    },
  };
}

/** Everything built in. `services` needs the store to know which addresses are taken. */
export function builtinTypes(serviceStrategy: ServiceStrategy, extraStrategies: { crd: Strategy; mutatingWebhooks: Strategy; validatingWebhooks: Strategy }): ResourceType[] {
  const crd = define({
    group: 'apiextensions.k8s.io',
    resource: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    status: true,
    tracksGeneration: true,
    strategy: extraStrategies.crd,
  });
  crd.allowUnconditionalUpdate = false;
  crd.finalizersOnDelete = [CRD_CLEANUP_FINALIZER];
  return [
    define({
      resource: 'namespaces',
      kind: 'Namespace',
      namespaced: false,
      shortNames: ['ns'],
      status: true,
      nameRule: 'dns1123Label',
      strategy: namespaceStrategy,
      patchMeta: CONDITIONS,
      fields: (o) => ({ 'status.phase': str(rec(o.status).phase) }),
    }),
    define({
      resource: 'nodes',
      kind: 'Node',
      namespaced: false,
      shortNames: ['no'],
      status: true,
      strategy: nodeStrategy,
      patchMeta: { ...CONDITIONS, 'status.addresses': { mergeKey: 'type' }, 'spec.podCIDRs': { merge: true } },
      fields: (o) => ({ 'spec.unschedulable': String(rec(o.spec).unschedulable === true) }),
    }),
    define({
      resource: 'services',
      kind: 'Service',
      namespaced: true,
      shortNames: ['svc'],
      categories: ['all'],
      status: true,
      nameRule: 'dns1035Label',
      strategy: serviceStrategy,
      allowCreateOnUpdate: true,
      returnDeletedObject: true,
      patchMeta: { 'spec.ports': { mergeKey: 'port' }, ...CONDITIONS },
      fields: (o) => ({ 'spec.clusterIP': str(rec(o.spec).clusterIP), 'spec.type': str(rec(o.spec).type) }),
    }),
    define({ resource: 'endpoints', kind: 'Endpoints', namespaced: true, shortNames: ['ep'], allowCreateOnUpdate: true }),
    define({ resource: 'configmaps', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'], strategy: { validate: validateConfigKeys } }),
    define({ resource: 'secrets', kind: 'Secret', namespaced: true, strategy: { ...secretStrategy, validate: validateConfigKeys }, fields: (o) => ({ type: str(o.type) }) }),
    define({ resource: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true, shortNames: ['sa'], returnDeletedObject: true }),
    define({ resource: 'events', kind: 'Event', namespaced: true, shortNames: ['ev'], allowCreateOnUpdate: true, strategy: eventStrategy, fields: eventFields }),
    define({
      resource: 'pods',
      kind: 'Pod',
      namespaced: true,
      shortNames: ['po'],
      categories: ['all'],
      status: true,
      returnDeletedObject: true,
      strategy: podStrategy,
      patchMeta: { ...podSpecMeta('spec.'), ...CONDITIONS, 'status.podIPs': { mergeKey: 'ip' } },
      fields: (o) => {
        const spec = rec(o.spec);
        const status = rec(o.status);
        return {
          'spec.nodeName': str(spec.nodeName),
          'spec.restartPolicy': str(spec.restartPolicy),
          'spec.schedulerName': str(spec.schedulerName),
          'spec.serviceAccountName': str(spec.serviceAccountName),
          'spec.hostNetwork': String(spec.hostNetwork === true),
          'status.phase': str(status.phase),
          'status.podIP': str(status.podIP),
          'status.nominatedNodeName': str(status.nominatedNodeName),
        };
      },
    }),
    define({
      group: 'events.k8s.io',
      resource: 'events',
      kind: 'Event',
      namespaced: true,
      shortNames: ['ev'],
      storage: 'events',
      allowCreateOnUpdate: true,
      strategy: newEventStrategy,
      conversion: eventsV1Conversion,
      fields: eventFields,
      fieldAlias: EVENTS_V1_FIELD_ALIAS,
      table: BUILTIN_TABLES.events,
    }),
    define({ group: 'discovery.k8s.io', resource: 'endpointslices', kind: 'EndpointSlice', namespaced: true, strategy: endpointSliceStrategy }),
    define({ group: 'coordination.k8s.io', resource: 'leases', kind: 'Lease', namespaced: true, allowCreateOnUpdate: true }),
    define({
      group: 'apps',
      resource: 'deployments',
      kind: 'Deployment',
      namespaced: true,
      shortNames: ['deploy'],
      categories: ['all'],
      status: true,
      tracksGeneration: true,
      strategy: workloadStrategy('Deployment'),
      patchMeta: { ...podSpecMeta('spec.template.spec.'), ...CONDITIONS },
    }),
    define({
      group: 'apps',
      resource: 'daemonsets',
      kind: 'DaemonSet',
      namespaced: true,
      shortNames: ['ds'],
      categories: ['all'],
      status: true,
      tracksGeneration: true,
      strategy: workloadStrategy('DaemonSet'),
      patchMeta: { ...podSpecMeta('spec.template.spec.'), ...CONDITIONS },
    }),
    define({ group: 'rbac.authorization.k8s.io', resource: 'roles', kind: 'Role', namespaced: true, nameRule: 'pathSegment' }),
    define({ group: 'rbac.authorization.k8s.io', resource: 'rolebindings', kind: 'RoleBinding', namespaced: true, nameRule: 'pathSegment' }),
    define({ group: 'rbac.authorization.k8s.io', resource: 'clusterroles', kind: 'ClusterRole', namespaced: false, nameRule: 'pathSegment' }),
    define({ group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false, nameRule: 'pathSegment' }),
    crd,
    define({
      group: 'admissionregistration.k8s.io',
      resource: 'mutatingwebhookconfigurations',
      kind: 'MutatingWebhookConfiguration',
      namespaced: false,
      categories: ['api-extensions'],
      tracksGeneration: true,
      strategy: extraStrategies.mutatingWebhooks,
      patchMeta: { webhooks: { mergeKey: 'name' } },
    }),
    define({
      group: 'admissionregistration.k8s.io',
      resource: 'validatingwebhookconfigurations',
      kind: 'ValidatingWebhookConfiguration',
      namespaced: false,
      categories: ['api-extensions'],
      tracksGeneration: true,
      strategy: extraStrategies.validatingWebhooks,
      patchMeta: { webhooks: { mergeKey: 'name' } },
    }),
  ];
}

/** The objects a fresh cluster has: its namespaces and the `kubernetes` Service. */
export function initialObjects(now: Date): KubeObject[] {
  const created = timestamp(now);
  const ns = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, creationTimestamp: created } });
  return [
    ns('default'),
    ns('kube-system'),
    ns('kube-public'),
    ns('kube-node-lease'),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver', provider: 'kubernetes' } },
      spec: { type: 'ClusterIP', ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }] },
    },
  ];
}
