/**
 * Server-side printing: the `Table` objects `kubectl get` asks for (`Accept:
 * application/json;as=Table;v=v1;g=meta.k8s.io`). Columns and cells follow
 * kubernetes/pkg/printers/internalversion for built-in types and the CRD's
 * additionalPrinterColumns for custom resources, so `kubectl get` prints what it prints
 * against a cluster.
 */
import { isObject, type KubeObject } from './object.js';
import type { PrinterColumn, ResourceType, TableConvertor } from './resources.js';

/** apimachinery's duration.HumanDuration: `45s`, `3m20s`, `5h10m`, `12d`. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const d = Math.floor(hours / 24) % 365;
    return d === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${d}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

/** translateTimestampSince: the AGE column. */
export function age(ts: unknown, now: Date): string {
  if (typeof ts !== 'string' || ts === '') return '<unknown>';
  const t = Date.parse(ts);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now.getTime() - t);
}

const NAME_COLUMN: PrinterColumn = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description:
    'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names',
};
const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'string',
  description:
    'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata',
};

function col(name: string, type = 'string', priority = 0, description = ''): PrinterColumn {
  const c: PrinterColumn = { name, type, description };
  if (priority) c.priority = priority;
  return c;
}

// Small typed readers: printers see arbitrary JSON and must never throw on odd shapes.
function rec(v: unknown): Record<string, unknown> {
  return isObject(v) ? v : {};
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}
function formatLabels(m: unknown): string {
  const entries = Object.entries(rec(m));
  return entries.length
    ? entries
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${str(v)}`)
        .join(',')
    : '<none>';
}

/** The generic convertor of the apiserver (rest.NewDefaultTableConvertor): Name, Created At. */
export const defaultTable: TableConvertor = {
  columns: [NAME_COLUMN, { name: 'Created At', type: 'date', description: AGE_COLUMN.description }],
  cells: (o) => [o.metadata.name ?? '', o.metadata.creationTimestamp ?? ''],
};

function servicePorts(ports: unknown): string {
  const pieces = arr(ports).map((p) => {
    const r = rec(p);
    const nodePort = typeof r.nodePort === 'number' && r.nodePort > 0 ? `:${r.nodePort}` : '';
    return `${str(r.port)}${nodePort}/${str(r.protocol)}`;
  });
  return pieces.length ? pieces.join(',') : '<none>';
}

function serviceExternalIp(svc: KubeObject): string {
  const spec = rec(svc.spec);
  const externalIPs = arr(spec.externalIPs).map(str);
  switch (spec.type) {
    case 'ClusterIP':
    case 'NodePort':
    case undefined:
      return externalIPs.length ? externalIPs.join(',') : '<none>';
    case 'LoadBalancer': {
      const ingress = arr(rec(rec(svc.status).loadBalancer).ingress)
        .map((i) => str(rec(i).ip) || str(rec(i).hostname))
        .filter(Boolean);
      const lb = [...new Set(ingress)].sort();
      const all = [...lb, ...externalIPs];
      return all.length ? all.join(',') : '<pending>';
    }
    case 'ExternalName':
      return str(spec.externalName);
    default:
      return '<unknown>';
  }
}

const serviceTable: TableConvertor = {
  columns: [NAME_COLUMN, col('Type'), col('Cluster-IP'), col('External-IP'), col('Port(s)'), AGE_COLUMN, col('Selector', 'string', 1)],
  cells: (o, now) => {
    const spec = rec(o.spec);
    const clusterIPs = arr(spec.clusterIPs).map(str);
    return [
      o.metadata.name,
      str(spec.type),
      clusterIPs[0] ?? (str(spec.clusterIP) || '<none>'),
      serviceExternalIp(o),
      servicePorts(spec.ports),
      age(o.metadata.creationTimestamp, now),
      formatLabels(spec.selector),
    ];
  },
};

const configMapTable: TableConvertor = {
  columns: [NAME_COLUMN, col('Data', 'integer'), AGE_COLUMN],
  cells: (o, now) => [o.metadata.name, Object.keys(rec(o.data)).length + Object.keys(rec(o.binaryData)).length, age(o.metadata.creationTimestamp, now)],
};

const secretTable: TableConvertor = {
  columns: [NAME_COLUMN, col('Type'), col('Data', 'integer'), AGE_COLUMN],
  cells: (o, now) => [o.metadata.name, str(o.type) || 'Opaque', Object.keys(rec(o.data)).length, age(o.metadata.creationTimestamp, now)],
};

const namespaceTable: TableConvertor = {
  columns: [NAME_COLUMN, col('Status'), AGE_COLUMN],
  cells: (o, now) => [o.metadata.name, str(rec(o.status).phase), age(o.metadata.creationTimestamp, now)],
};

function nodeStatus(o: KubeObject): string {
  const ready = arr(rec(o.status).conditions)
    .map(rec)
    .find((c) => c.type === 'Ready');
  const states = [ready ? (ready.status === 'True' ? 'Ready' : ready.status === 'False' ? 'NotReady' : 'Unknown') : 'Unknown'];
  if (rec(o.spec).unschedulable === true) states.push('SchedulingDisabled');
  return states.join(',');
}

function nodeRoles(o: KubeObject): string {
  const roles = Object.keys(o.metadata.labels ?? {})
    .filter((k) => k.startsWith('node-role.kubernetes.io/'))
    .map((k) => k.slice('node-role.kubernetes.io/'.length))
    .filter(Boolean)
    .sort();
  return roles.length ? roles.join(',') : '<none>';
}

function nodeAddress(o: KubeObject, type: string): string {
  const a = arr(rec(o.status).addresses)
    .map(rec)
    .find((x) => x.type === type);
  return a ? str(a.address) : '<none>';
}

const nodeTable: TableConvertor = {
  columns: [
    NAME_COLUMN,
    col('Status'),
    col('Roles'),
    AGE_COLUMN,
    col('Version'),
    col('Internal-IP', 'string', 1),
    col('External-IP', 'string', 1),
    col('OS-Image', 'string', 1),
    col('Kernel-Version', 'string', 1),
    col('Container-Runtime', 'string', 1),
  ],
  cells: (o, now) => {
    const info = rec(rec(o.status).nodeInfo);
    return [
      o.metadata.name,
      nodeStatus(o),
      nodeRoles(o),
      age(o.metadata.creationTimestamp, now),
      str(info.kubeletVersion),
      nodeAddress(o, 'InternalIP'),
      nodeAddress(o, 'ExternalIP'),
      str(info.osImage) || '<unknown>',
      str(info.kernelVersion) || '<unknown>',
      str(info.containerRuntimeVersion) || '<unknown>',
    ];
  },
};

const podTable: TableConvertor = {
  columns: [
    NAME_COLUMN,
    col('Ready'),
    col('Status'),
    col('Restarts'),
    AGE_COLUMN,
    col('IP', 'string', 1),
    col('Node', 'string', 1),
    col('Nominated Node', 'string', 1),
    col('Readiness Gates', 'string', 1),
  ],
  cells: (o, now) => {
    const status = rec(o.status);
    const containers = arr(rec(o.spec).containers);
    const statuses = arr(status.containerStatuses).map(rec);
    const ready = statuses.filter((s) => s.ready === true).length;
    const restarts = statuses.reduce((n, s) => n + (typeof s.restartCount === 'number' ? s.restartCount : 0), 0);
    const phase = o.metadata.deletionTimestamp ? 'Terminating' : str(status.reason) || str(status.phase) || 'Pending';
    return [
      o.metadata.name,
      `${ready}/${containers.length}`,
      phase,
      String(restarts),
      age(o.metadata.creationTimestamp, now),
      str(status.podIP) || '<none>',
      str(rec(o.spec).nodeName) || '<none>',
      str(status.nominatedNodeName) || '<none>',
      '<none>',
    ];
  },
};

function endpointsString(subsets: unknown): string {
  const all: string[] = [];
  for (const s of arr(subsets).map(rec)) {
    const ports = arr(s.ports).map(rec);
    for (const a of arr(s.addresses).map(rec)) {
      if (ports.length === 0) all.push(str(a.ip));
      for (const p of ports) all.push(`${str(a.ip)}:${str(p.port)}`);
    }
  }
  if (all.length === 0) return '<none>';
  return all.length > 3 ? `${all.slice(0, 3).join(',')} + ${all.length - 3} more...` : all.join(',');
}

const endpointsTable: TableConvertor = {
  columns: [NAME_COLUMN, col('Endpoints'), AGE_COLUMN],
  cells: (o, now) => [o.metadata.name, endpointsString(o.subsets), age(o.metadata.creationTimestamp, now)],
};

const endpointSliceTable: TableConvertor = {
  columns: [NAME_COLUMN, col('AddressType'), col('Ports'), col('Endpoints'), AGE_COLUMN],
  cells: (o, now) => {
    const ports = arr(o.ports).map((p) => str(rec(p).port));
    const addresses = arr(o.endpoints).flatMap((e) => arr(rec(e).addresses).map(str));
    const shown = addresses.length > 3 ? `${addresses.slice(0, 3).join(',')} + ${addresses.length - 3} more...` : addresses.join(',') || '<unset>';
    return [o.metadata.name, str(o.addressType), ports.length ? ports.join(',') : '<unset>', shown, age(o.metadata.creationTimestamp, now)];
  },
};

/** Core v1 events (the events.k8s.io API converts to this form before printing). */
const eventTable: TableConvertor = {
  columns: [
    col('Last Seen'),
    col('Type'),
    col('Reason'),
    col('Object'),
    col('Subobject', 'string', 1),
    col('Source', 'string', 1),
    col('Message'),
    col('First Seen', 'string', 1),
    col('Count', 'string', 1),
    col('Name', 'string', 1),
  ],
  cells: (o, now) => {
    const involved = rec(o.involvedObject);
    const source = rec(o.source);
    const series = isObject(o.series) ? o.series : undefined;
    // printEvent: first from firstTimestamp or eventTime; last from the series, lastTimestamp, or first.
    const firstAge = age(str(o.firstTimestamp) || str(o.eventTime), now);
    const lastAge = series ? age(series.lastObservedTime, now) : o.lastTimestamp ? age(o.lastTimestamp, now) : firstAge;
    const count = series ? series.count : typeof o.count === 'number' && o.count > 0 ? o.count : 1;
    return [
      lastAge,
      str(o.type),
      str(o.reason),
      `${str(involved.kind).toLowerCase()}/${str(involved.name)}`,
      str(involved.fieldPath),
      [str(source.component) || str(o.reportingComponent), str(source.host)].filter(Boolean).join(', '),
      str(o.message).trim(),
      firstAge,
      String(count),
      o.metadata.name,
    ];
  },
};

const leaseTable: TableConvertor = {
  columns: [NAME_COLUMN, col('Holder'), AGE_COLUMN],
  cells: (o, now) => [o.metadata.name, str(rec(o.spec).holderIdentity), age(o.metadata.creationTimestamp, now)],
};

const webhookConfigurationTable: TableConvertor = {
  columns: [NAME_COLUMN, col('Webhooks', 'integer'), AGE_COLUMN],
  cells: (o, now) => [o.metadata.name, arr(o.webhooks).length, age(o.metadata.creationTimestamp, now)],
};

function num(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

function podTemplateColumns(o: KubeObject): [string, string] {
  const containers = arr(rec(rec(rec(o.spec).template).spec).containers).map(rec);
  return [containers.map((c) => str(c.name)).join(','), containers.map((c) => str(c.image)).join(',')];
}

function selectorString(sel: unknown): string {
  const s = rec(sel);
  const parts = Object.entries(rec(s.matchLabels)).map(([k, v]) => `${k}=${str(v)}`);
  for (const e of arr(s.matchExpressions).map(rec)) parts.push(`${str(e.key)} ${str(e.operator).toLowerCase()} (${arr(e.values).map(str).join(',')})`);
  return parts.length ? parts.join(',') : '<none>';
}

const deploymentTable: TableConvertor = {
  columns: [
    NAME_COLUMN,
    col('Ready'),
    col('Up-to-date', 'integer'),
    col('Available', 'integer'),
    AGE_COLUMN,
    col('Containers', 'string', 1),
    col('Images', 'string', 1),
    col('Selector', 'string', 1),
  ],
  cells: (o, now) => {
    const status = rec(o.status);
    const [containers, images] = podTemplateColumns(o);
    return [
      o.metadata.name,
      `${num(status.readyReplicas)}/${num(rec(o.spec).replicas)}`,
      num(status.updatedReplicas),
      num(status.availableReplicas),
      age(o.metadata.creationTimestamp, now),
      containers,
      images,
      selectorString(rec(o.spec).selector),
    ];
  },
};

const daemonSetTable: TableConvertor = {
  columns: [
    NAME_COLUMN,
    col('Desired', 'integer'),
    col('Current', 'integer'),
    col('Ready', 'integer'),
    col('Up-to-date', 'integer'),
    col('Available', 'integer'),
    col('Node Selector'),
    AGE_COLUMN,
    col('Containers', 'string', 1),
    col('Images', 'string', 1),
    col('Selector', 'string', 1),
  ],
  cells: (o, now) => {
    const status = rec(o.status);
    const [containers, images] = podTemplateColumns(o);
    return [
      o.metadata.name,
      num(status.desiredNumberScheduled),
      num(status.currentNumberScheduled),
      num(status.numberReady),
      num(status.updatedNumberScheduled),
      num(status.numberAvailable),
      formatLabels(rec(rec(rec(o.spec).template).spec).nodeSelector),
      age(o.metadata.creationTimestamp, now),
      containers,
      images,
      selectorString(rec(o.spec).selector),
    ];
  },
};

/** Printers of the built-in types, by storage key. */
export const BUILTIN_TABLES: Readonly<Record<string, TableConvertor>> = {
  services: serviceTable,
  configmaps: configMapTable,
  secrets: secretTable,
  namespaces: namespaceTable,
  nodes: nodeTable,
  pods: podTable,
  endpoints: endpointsTable,
  'endpointslices.discovery.k8s.io': endpointSliceTable,
  events: eventTable,
  'leases.coordination.k8s.io': leaseTable,
  'deployments.apps': deploymentTable,
  'daemonsets.apps': daemonSetTable,
  'mutatingwebhookconfigurations.admissionregistration.k8s.io': webhookConfigurationTable,
  'validatingwebhookconfigurations.admissionregistration.k8s.io': webhookConfigurationTable,
};

/* ------------------------------------------------------------- CR columns */

type PathStep = { kind: 'field'; name: string } | { kind: 'index'; index: number } | { kind: 'all' } | { kind: 'filter'; path: string[]; value: string };

/**
 * Parses the simple JSONPath of additionalPrinterColumns: `.a.b`, `['a']`, `[0]`, `[*]` and
 * `[?(@.type=="Ready")]`. Returns undefined for anything else.
 */
export function parseJsonPath(path: string): PathStep[] | undefined {
  const steps: PathStep[] = [];
  let rest = path
    .trim()
    .replace(/^\{(.*)\}$/, '$1')
    .replace(/^\$/, '');
  while (rest.length) {
    let m: RegExpExecArray | null;
    if ((m = /^\.([A-Za-z0-9_\-/]+)/.exec(rest))) {
      steps.push({ kind: 'field', name: m[1] as string });
    } else if ((m = /^\['([^']*)'\]/.exec(rest))) {
      steps.push({ kind: 'field', name: m[1] as string });
    } else if ((m = /^\[(\d+)\]/.exec(rest))) {
      steps.push({ kind: 'index', index: Number(m[1]) });
    } else if ((m = /^\[\*\]/.exec(rest))) {
      steps.push({ kind: 'all' });
    } else if ((m = /^\[\?\(@((?:\.[A-Za-z0-9_\-/]+)+)\s*==\s*["']([^"']*)["']\)\]/.exec(rest))) {
      steps.push({ kind: 'filter', path: (m[1] as string).slice(1).split('.'), value: m[2] as string });
    } else {
      return undefined;
    }
    rest = rest.slice(m[0].length);
  }
  return steps;
}

/** Every value the path selects (several after `[*]` or a filter). */
export function evalJsonPath(obj: unknown, steps: readonly PathStep[]): unknown[] {
  let current: unknown[] = [obj];
  for (const s of steps) {
    const next: unknown[] = [];
    for (const v of current) {
      if (s.kind === 'field' && isObject(v) && v[s.name] !== undefined) next.push(v[s.name]);
      else if (s.kind === 'index' && Array.isArray(v) && s.index < v.length) next.push(v[s.index]);
      else if (s.kind === 'all' && Array.isArray(v)) next.push(...v);
      else if (s.kind === 'filter' && Array.isArray(v)) {
        for (const e of v) {
          let x: unknown = e;
          for (const p of s.path) x = isObject(x) ? x[p] : undefined;
          if (x !== undefined && String(x) === s.value) next.push(e);
        }
      }
    }
    current = next;
  }
  return current;
}

function sortedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (!isObject(v)) return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, sortedKeys(v[k])]),
  );
}

/** Go's json.Marshal of decoded JSON: compact, map keys sorted, `<`, `>`, `&`, U+2028/9 escaped. */
export function goJson(v: unknown): string {
  return JSON.stringify(sortedKeys(v)).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The value of one CR printer column cell, as kube-apiserver's CRD table convertor makes it:
 * only the first value the path selects counts (`.spec.holders[*].name` shows the first
 * holder's name alone; kubectl's client-side `-o custom-columns` is what joins them with ","),
 * a string column prints scalars as text and objects/arrays as Go's compact JSON, other
 * types keep values of their type only.
 */
function crCell(column: PrinterColumn, obj: KubeObject, now: Date): unknown {
  const steps = column.jsonPath ? parseJsonPath(column.jsonPath) : undefined;
  if (!steps) return null;
  const results = evalJsonPath(obj, steps);
  if (results.length === 0) return null;
  const value = results[0];
  switch (column.type) {
    case 'string':
      return typeof value === 'string' ? value : isObject(value) || Array.isArray(value) ? goJson(value) : JSON.stringify(value);
    case 'integer':
      return typeof value === 'number' ? Math.trunc(value) : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    case 'date':
      return typeof value === 'string' ? (Number.isNaN(Date.parse(value)) ? '<invalid>' : age(value, now)) : null;
    default:
      return null;
  }
}

/** The table of a custom resource version: Name, then its additionalPrinterColumns (default Age). */
export function customResourceTable(columns: readonly PrinterColumn[]): TableConvertor {
  // Without columns the apiserver shows Age, described as ObjectMeta's creationTimestamp.
  const effective = columns.length ? columns : [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: AGE_COLUMN.description ?? '' }];
  return {
    columns: [
      NAME_COLUMN,
      ...effective.map(({ name, type, format, description, priority, jsonPath }) => {
        const c: PrinterColumn = { name, type, description: description || `Custom resource definition column (in JSONPath format): ${jsonPath ?? ''}` };
        if (format) c.format = format;
        if (priority) c.priority = priority;
        return c;
      }),
    ],
    cells: (o, now) => [o.metadata.name, ...effective.map((c) => crCell(c, o, now))],
  };
}

/** How much of each object a Table row carries (`includeObject`). */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** PartialObjectMetadata of an object: what clients get with `as=PartialObjectMetadata`. */
export function partialMetadata(obj: KubeObject): KubeObject {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

/** Builds a metav1.Table for objects of one type. */
export function toTable(
  type: ResourceType,
  objects: readonly KubeObject[],
  opts: { include: IncludeObject; noHeaders?: boolean; resourceVersion?: string; continue?: string; remainingItemCount?: number; now?: Date },
): KubeObject {
  const now = opts.now ?? new Date();
  const metadata: Record<string, unknown> = {};
  if (opts.resourceVersion) metadata.resourceVersion = opts.resourceVersion;
  if (opts.continue) metadata.continue = opts.continue;
  if (opts.remainingItemCount !== undefined) metadata.remainingItemCount = opts.remainingItemCount;
  const table: KubeObject = {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: opts.noHeaders
      ? []
      : type.table.columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description ?? '', priority: c.priority ?? 0 })),
    rows: objects.map((o) => {
      const row: Record<string, unknown> = { cells: type.table.cells(o, now) };
      if (opts.include === 'Object') row.object = o;
      else if (opts.include === 'Metadata') row.object = partialMetadata(o);
      return row;
    }),
  };
  return table;
}
