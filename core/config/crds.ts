/**
 * metallb.io objects (IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer, BFDProfile,
 * Community) as the API returns them or as written in YAML. Unknown kinds, wrong apiVersions
 * and wrongly typed fields are errors at their path, never exceptions.
 */
import { emptyDeclarations, type Declarations } from './declarations.js';
import { advertisementTuningKeys, bfdKeys, peerKeys, PEER_UNSUPPORTED, readAdvertisementTuning, readBFDProfile, readPeer, readRanges } from './objects.js';
import { parseCommunity } from './community.js';
import { at, describe, isFields, Reader, type Fields, type Report } from './read.js';
import { labelKeyProblem, labelValueProblem, readSelector, readSelectors } from './selector.js';
import type { CrdKind, LabelSelector, Origin, PreferredNodeSelector, ServiceAllocation } from './types.js';

/** The API group of every configuration kind. */
export const GROUP = 'metallb.io';
/** Where MetalLB lives and reads its configuration from. */
export const DEFAULT_NAMESPACE = 'metallb-system';

/** The versions we read per kind: BGPPeer moved to v1beta2 in MetalLB; v1beta1 still parses. */
const VERSIONS: Readonly<Record<CrdKind, readonly string[]>> = {
  IPAddressPool: ['v1beta1'],
  L2Advertisement: ['v1beta1'],
  BGPAdvertisement: ['v1beta1'],
  BGPPeer: ['v1beta1', 'v1beta2'],
  BFDProfile: ['v1beta1'],
  Community: ['v1beta1'],
};
const KINDS = Object.keys(VERSIONS) as CrdKind[];

interface Meta {
  kind: CrdKind;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  origin: Origin;
  spec: Fields;
  r: Reader;
  /** Errors already reported before the spec was read (bad labels, unknown top-level keys). */
  errorsBefore: number;
  /** Position in the input's resources. */
  index: number;
}

/** Advertisement fields of MetalLB's that metallb-ts does not have yet. */
const SERVICE_SELECTORS_UNSUPPORTED = {
  serviceSelectors: 'is not supported yet: metallb-ts advertises every Service of the pools it covers; remove it until then',
};

/**
 * Read every resource into declarations. A passwordSecret whose Secret is absent becomes
 * Pending. With `namespace` (the controller's), an object elsewhere is an error and not
 * configuration: MetalLB reads only its own namespace and its webhook refuses the others.
 */
export function readResources(resources: readonly unknown[], secrets: unknown, report: Report, namespace?: string): Declarations {
  const out = emptyDeclarations();
  resources.forEach((res, i) => {
    const meta = readMeta(res, i, report, namespace);
    if (meta) readKind(meta, out, secrets);
  });
  return out;
}

function readMeta(res: unknown, index: number, report: Report, ours: string | undefined): Meta | undefined {
  const fallback = `resources[${index}]`;
  if (!isFields(res)) {
    report.errors.push({ source: fallback, path: '', resource: index, message: `must be a metallb.io object (apiVersion, kind, metadata, spec), got ${describe(res)}` });
    return undefined;
  }
  const kindText = typeof res.kind === 'string' ? res.kind : undefined;
  const m = isFields(res.metadata) ? res.metadata : undefined;
  const nameText = typeof m?.name === 'string' && m.name !== '' ? m.name : undefined;
  // Objects written without a namespace land in MetalLB's own when applied as its docs say.
  const home = ours ?? DEFAULT_NAMESPACE;
  const nsText = typeof m?.namespace === 'string' && m.namespace !== '' ? m.namespace : home;
  const source = `${kindText ?? 'object'} ${nameText ? `${nsText}/${nameText}` : `(${fallback})`}`;
  const r = new Reader(source, report, { resource: index });
  const before = r.errorCount;
  if (ours !== undefined && nsText !== ours && typeof m?.namespace === 'string') {
    r.fail(
      'metadata.namespace',
      `must be created in the ${ours} namespace: MetalLB reads its configuration only from there, so this object would be ignored; ` + `set metadata.namespace: ${ours}`,
    );
    return undefined;
  }

  const kind = KINDS.find((k) => k === kindText);
  let readable = true;
  if (kindText === undefined) r.fail('kind', `missing or not a string (one of ${KINDS.join(', ')})`);
  else if (kind === undefined) r.fail('kind', `unknown kind ${JSON.stringify(kindText)} (metallb.io kinds: ${KINDS.join(', ')})`);
  const apiVersion = res.apiVersion;
  if (kind !== undefined) {
    const allowed = VERSIONS[kind].map((v) => `${GROUP}/${v}`);
    if (typeof apiVersion !== 'string' || !allowed.includes(apiVersion)) {
      r.fail('apiVersion', `${kind} must have apiVersion ${allowed.join(' or ')}, got ${describe(apiVersion)}`);
      readable = false;
    }
  }
  r.onlyKnown(res, '', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  const metadata = r.fields(res.metadata, 'metadata');
  if (metadata === undefined) r.fail('', 'missing metadata (metadata.name is required)');
  const name = metadata ? r.required(metadata, 'name', 'metadata', r.string(metadata, 'name', 'metadata')) : undefined;
  if (name === '') r.fail('metadata.name', 'must not be empty');
  const namespace = (metadata ? r.string(metadata, 'namespace', 'metadata') : undefined) || home;
  const labels = metadata ? r.stringMap(metadata, 'labels', 'metadata') : {};
  for (const [k, v] of Object.entries(labels)) {
    const problem = labelKeyProblem(k) ?? labelValueProblem(v);
    if (problem) r.fail(at('metadata.labels', k), problem);
  }
  const spec = r.fields(res.spec, 'spec') ?? {};
  // An unknown kind or version has an unknown schema, and a nameless object cannot be referred
  // to: nothing more to read. Other problems still let the spec be checked.
  if (!readable || kind === undefined || !name) return undefined;
  return { kind, name, namespace, labels, origin: { kind, namespace, name }, spec, r, errorsBefore: before, index };
}

function readKind(meta: Meta, out: Declarations, secrets: unknown): void {
  const { r, spec, name, origin } = meta;
  const ok = (): boolean => r.errorCount === meta.errorsBefore;
  const base = { source: r.source, path: '', namePath: 'metadata.name', resource: meta.index };
  switch (meta.kind) {
    case 'IPAddressPool': {
      r.onlyKnown(spec, 'spec', ['addresses', 'autoAssign', 'avoidBuggyIPs', 'serviceAllocation']);
      const items = r.list(spec, 'addresses', 'spec') ?? [];
      const { ranges, paths } = readRanges(r, items, 'spec.addresses');
      if (items.length === 0) r.fail('spec.addresses', `pool ${JSON.stringify(name)} has no addresses: add CIDRs or a-b ranges`);
      const serviceAllocation = readServiceAllocation(r, spec.serviceAllocation, 'spec.serviceAllocation');
      out.pools.push({
        ...base,
        value: {
          name,
          origin,
          labels: meta.labels,
          ranges,
          autoAssign: r.bool(spec, 'autoAssign', 'spec') ?? true,
          avoidBuggyIPs: r.bool(spec, 'avoidBuggyIPs', 'spec') ?? false,
          ...(serviceAllocation ? { serviceAllocation } : {}),
        },
        ok: ok(),
        rangePaths: paths,
      });
      return;
    }
    case 'L2Advertisement': {
      r.onlyKnown(spec, 'spec', ['ipAddressPools', 'ipAddressPoolSelectors', 'nodeSelectors', 'preferredNodeSelectors', 'interfaces'], SERVICE_SELECTORS_UNSUPPORTED);
      const poolRefs = readNames(r, spec, 'ipAddressPools', 'pool');
      const interfaces = r.strings(spec, 'interfaces', 'spec');
      interfaces.forEach((ifname, i) => {
        if (ifname === '' || /[\s/]/.test(ifname)) r.fail(at('spec.interfaces', i), `${JSON.stringify(ifname)} is not an interface name`);
      });
      r.noDuplicates(interfaces, 'spec.interfaces', 'interface');
      const value = {
        name,
        origin,
        ipAddressPools: poolRefs.map((p) => p.text),
        ipAddressPoolSelectors: readSelectors(r, spec.ipAddressPoolSelectors, 'spec.ipAddressPoolSelectors', 'camel'),
        nodeSelectors: readSelectors(r, spec.nodeSelectors, 'spec.nodeSelectors', 'camel'),
        preferredNodeSelectors: readPreferredNodeSelectors(r, spec.preferredNodeSelectors, 'spec.preferredNodeSelectors'),
        interfaces,
      };
      out.l2Advertisements.push({ ...base, value, ok: ok(), poolRefs });
      return;
    }
    case 'BGPAdvertisement': {
      const selection = ['ipAddressPools', 'ipAddressPoolSelectors', 'nodeSelectors', 'peers'];
      r.onlyKnown(spec, 'spec', [...advertisementTuningKeys('camel'), ...selection], SERVICE_SELECTORS_UNSUPPORTED);
      const tuning = readAdvertisementTuning(r, spec, 'spec', 'camel');
      const poolRefs = readNames(r, spec, 'ipAddressPools', 'pool');
      const peers = readNames(r, spec, 'peers', 'peer').map((p) => p.text);
      const value = {
        name,
        origin,
        aggregationLength: tuning.aggregationLength,
        aggregationLengthV6: tuning.aggregationLengthV6,
        ...(tuning.localPref !== undefined ? { localPref: tuning.localPref } : {}),
        communities: [],
        ipAddressPools: poolRefs.map((p) => p.text),
        ipAddressPoolSelectors: readSelectors(r, spec.ipAddressPoolSelectors, 'spec.ipAddressPoolSelectors', 'camel'),
        nodeSelectors: readSelectors(r, spec.nodeSelectors, 'spec.nodeSelectors', 'camel'),
        peers,
      };
      out.bgpAdvertisements.push({
        ...base,
        value,
        ok: ok(),
        poolRefs,
        communityRefs: tuning.communityRefs,
        aggregationLengthPath: tuning.aggregationLengthPath,
        aggregationLengthV6Path: tuning.aggregationLengthV6Path,
        localPrefPath: tuning.localPrefPath,
      });
      return;
    }
    case 'BGPPeer': {
      r.onlyKnown(spec, 'spec', peerKeys('camel'), PEER_UNSUPPORTED);
      const read = readPeer(r, spec, 'spec', 'camel', name, origin, meta.namespace);
      if (!read) return;
      const peer = read.peer;
      if (peer.passwordSecret && read.secretPath) {
        const { namespace, name: secretName } = peer.passwordSecret;
        const key = `${namespace}/${secretName}`;
        const secret = secretOf(isFields(secrets) ? secrets[key] : undefined);
        if (secret === undefined) {
          r.waitFor(read.secretPath, `Secret ${key} (the BGP password) does not exist yet; the session waits for it`);
        } else if (secret.type !== undefined && secret.type !== BASIC_AUTH) {
          r.fail(read.secretPath, `Secret ${key} is of type ${JSON.stringify(secret.type)}; a BGP password Secret must be of type ${BASIC_AUTH} (as MetalLB requires)`);
        } else {
          const password = decodePassword(secret.data.password);
          if ('error' in password) r.fail(read.secretPath, `Secret ${key}: ${password.error}`);
          else if (/[\r\n]/.test(password.value)) r.fail(read.secretPath, `Secret ${key}: the password must not contain line breaks`);
          else peer.password = password.value;
        }
      }
      out.peers.push({ ...base, value: peer, ok: ok(), paths: read.paths });
      return;
    }
    case 'BFDProfile': {
      r.onlyKnown(spec, 'spec', bfdKeys('camel'));
      const value = readBFDProfile(r, spec, 'spec', 'camel', name, origin);
      out.bfdProfiles.push({ ...base, value, ok: ok() });
      return;
    }
    case 'Community': {
      r.onlyKnown(spec, 'spec', ['communities']);
      (r.list(spec, 'communities', 'spec') ?? []).forEach((item, i) => {
        const path = at('spec.communities', i);
        const entry = r.fields(item, path);
        if (!entry) {
          if (item === null || item === undefined) r.fail(path, 'must be a map with name and value, got nothing');
          return;
        }
        r.onlyKnown(entry, path, ['name', 'value']);
        const alias = r.required(entry, 'name', path, r.string(entry, 'name', path));
        const text = r.required(entry, 'value', path, r.string(entry, 'value', path));
        if (alias === '') r.fail(at(path, 'name'), 'must not be empty');
        let community;
        if (text !== undefined) {
          const parsed = parseCommunity(text);
          if (parsed.ok) community = parsed.value;
          else r.fail(at(path, 'value'), parsed.error);
        }
        if (alias) out.aliases.push({ name: alias, community, source: r.source, path: at(path, 'name'), resource: meta.index });
      });
      return;
    }
  }
}

/** Names listed in a spec field, with their paths, duplicates refused. */
function readNames(r: Reader, spec: Fields, key: string, what: string): { text: string; path: string }[] {
  const path = at('spec', key);
  const refs: { text: string; path: string }[] = [];
  (r.list(spec, key, 'spec') ?? []).forEach((item, i) => {
    const text = r.stringValue(item, at(path, i));
    if (text === '') r.fail(at(path, i), `${what} name must not be empty`);
    else if (text !== undefined) refs.push({ text, path: at(path, i) });
    else if (item === null) r.fail(at(path, i), `must be a ${what} name, got nothing`);
  });
  r.noDuplicates(
    refs.map((x) => x.text),
    path,
    what,
  );
  return refs;
}

/**
 * An L2Advertisement's weighted node preferences (Kubernetes' PreferredSchedulingTerm shape:
 * `{weight: 1..100, preference: <label selector>}`); malformed entries are reported and left out.
 */
function readPreferredNodeSelectors(r: Reader, value: unknown, path: string): PreferredNodeSelector[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    r.fail(path, `must be a list of {weight, preference}, got ${describe(value)}`);
    return [];
  }
  const out: PreferredNodeSelector[] = [];
  value.forEach((item, i) => {
    const p = at(path, i);
    const m = r.fields(item, p);
    if (m === undefined) {
      if (item === undefined || item === null) r.fail(p, 'must be a map with weight and preference, got nothing');
      return;
    }
    r.onlyKnown(m, p, ['weight', 'preference']);
    const weight = r.required(m, 'weight', p, r.int(m, 'weight', p, 1, 100));
    const hasPreference = m.preference !== undefined && m.preference !== null;
    if (!hasPreference) r.fail(p, 'missing required field "preference" (a label selector of the nodes to prefer)');
    const preference = hasPreference ? readSelector(r, m.preference, at(p, 'preference'), 'camel') : undefined;
    if (weight !== undefined && preference !== undefined) out.push({ weight, preference });
  });
  return out;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function readServiceAllocation(r: Reader, value: unknown, path: string): ServiceAllocation | undefined {
  const m = r.fields(value, path);
  if (m === undefined) return undefined;
  r.onlyKnown(m, path, ['priority', 'namespaces', 'namespaceSelectors', 'serviceSelectors']);
  const priority = r.int(m, 'priority', path, -2_147_483_648, 2_147_483_647);
  const namespaces = r.strings(m, 'namespaces', path);
  namespaces.forEach((ns, i) => {
    if (ns.length > 63 || !NAMESPACE.test(ns)) r.fail(at(at(path, 'namespaces'), i), `${JSON.stringify(ns)} is not a namespace name`);
  });
  r.noDuplicates(namespaces, at(path, 'namespaces'), 'namespace');
  const namespaceSelectors: LabelSelector[] = readSelectors(r, m.namespaceSelectors, at(path, 'namespaceSelectors'), 'camel');
  const serviceSelectors: LabelSelector[] = readSelectors(r, m.serviceSelectors, at(path, 'serviceSelectors'), 'camel');
  return { ...(priority !== undefined ? { priority } : {}), namespaces, namespaceSelectors, serviceSelectors };
}

/** The Secret type MetalLB requires of a BGP password Secret. */
export const BASIC_AUTH = 'kubernetes.io/basic-auth';

/**
 * A Secret as given in ConfigInput.secrets: the Secret itself (`type`, base64 `data`), or, from
 * older callers, its bare `data` map, whose type is then unknown and not checked.
 */
function secretOf(value: unknown): { type?: string; data: Fields } | undefined {
  if (!isFields(value)) return undefined;
  const whole = isFields(value.data) || (typeof value.type === 'string' && !('password' in value));
  if (!whole) return { data: value };
  const type = typeof value.type === 'string' && value.type !== '' ? value.type : 'Opaque'; // the API's default
  return { type, data: isFields(value.data) ? value.data : {} };
}

/** Secret data values are base64; the password is text (it ends up in a routing daemon's config). */
function decodePassword(value: unknown): { value: string } | { error: string } {
  if (value === undefined) return { error: 'has no key "password"' };
  if (typeof value !== 'string') return { error: `key "password" must be a base64 string, got ${describe(value)}` };
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    return { error: 'key "password" is not valid base64' };
  }
  try {
    const bytes = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (text === '') return { error: 'key "password" is empty' };
    return { value: text };
  } catch {
    return { error: 'key "password" is not valid base64 UTF-8 text' };
  }
}
