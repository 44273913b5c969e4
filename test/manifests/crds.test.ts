/**
 * The manifests under manifests/: every object is valid against the upstream Kubernetes schemas
 * (kubernetes-models), every CRD schema is structural, and the CRDs accept the configuration users
 * write (test/fixtures/config/crds.yaml, samples.yaml beside this file) and refuse what the API
 * server must refuse — checked with the CRDs' own openAPIV3Schema (ajv), defaulting, pruning and
 * CEL rules, the way kube-apiserver applies them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import { ValidatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import {
  celRules,
  isKubeObject,
  kubernetesAjv,
  loadYaml,
  manifestsDir,
  parseCel,
  repoRoot,
  schemaAtJsonPath,
  structuralProblems,
  verdictFor,
  yamlFilesUnder,
  type Crd,
  type CrdVersion,
  type KubeObject,
  type Schema,
  type Verdict,
} from './support.js';

// ---- what is under manifests/ ----------------------------------------------------------------

interface Loaded {
  file: string;
  obj: KubeObject;
}

const files = yamlFilesUnder(manifestsDir).filter((f) => f !== 'kustomization.yaml');
const loaded: Loaded[] = files.flatMap((file) =>
  loadYaml(join(manifestsDir, file)).map((obj) => {
    if (!isKubeObject(obj)) throw new Error(`${file}: a document that is not a Kubernetes object`);
    return { file, obj };
  }),
);
const crds = loaded.filter((l) => l.obj.kind === 'CustomResourceDefinition').map((l) => l.obj as Crd);
const crdByKind = new Map(crds.map((c) => [c.spec.names.kind, c]));

function crd(kind: string): Crd {
  const found = crdByKind.get(kind);
  if (!found) throw new Error(`no CRD for ${kind}`);
  return found;
}

function version(kind: string, name: string): CrdVersion {
  const found = crd(kind).spec.versions.find((v) => v.name === name);
  if (!found) throw new Error(`${kind} has no version ${name}`);
  return found;
}

/**
 * The upstream model for each kind the manifests may contain. A new kind (Deployment, ClusterRole,
 * webhook configuration, ...) must be added here, so that it is checked too.
 */
type Model = new (data: never) => { validate(): void };
const models: Record<string, Model> = {
  'v1/Namespace': Namespace,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/DaemonSet': DaemonSet,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': MutatingWebhookConfiguration,
  'admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration': ValidatingWebhookConfiguration,
};

// ---- the expected catalogue --------------------------------------------------------------------

const catalogue = [
  { kind: 'IPAddressPool', plural: 'ipaddresspools', scope: 'Namespaced', versions: ['v1beta1'], storage: 'v1beta1' },
  { kind: 'L2Advertisement', plural: 'l2advertisements', scope: 'Namespaced', versions: ['v1beta1'], storage: 'v1beta1' },
  { kind: 'BGPAdvertisement', plural: 'bgpadvertisements', scope: 'Namespaced', versions: ['v1beta1'], storage: 'v1beta1' },
  { kind: 'BGPPeer', plural: 'bgppeers', scope: 'Namespaced', versions: ['v1beta1', 'v1beta2'], storage: 'v1beta2' },
  { kind: 'BFDProfile', plural: 'bfdprofiles', scope: 'Namespaced', versions: ['v1beta1'], storage: 'v1beta1' },
  { kind: 'Community', plural: 'communities', scope: 'Namespaced', versions: ['v1beta1'], storage: 'v1beta1' },
  { kind: 'IPClaim', plural: 'ipclaims', scope: 'Cluster', versions: ['v1beta1'], storage: 'v1beta1' },
  { kind: 'ConfigurationState', plural: 'configurationstates', scope: 'Namespaced', versions: ['v1beta1'], storage: 'v1beta1' },
  { kind: 'ServiceL2Status', plural: 'servicel2statuses', scope: 'Namespaced', versions: ['v1beta1'], storage: 'v1beta1' },
  { kind: 'BGPSessionState', plural: 'bgpsessionstates', scope: 'Namespaced', versions: ['v1beta1'], storage: 'v1beta1' },
] as const;

/** Where a schema may keep unknown fields on purpose: nowhere, so far. */
const preserveUnknownAllowed: Record<string, string[]> = {};

// ---- custom resources against the CRDs' own schemas -----------------------------------------

const ajv = kubernetesAjv();
const validators = new Map<string, { validate: ValidateFunction; schema: Schema }>();
/** Schemas ajv refused to compile in strict mode (a misspelt keyword, a required field not defined). */
const compileErrors: string[] = [];
for (const c of crds)
  for (const v of c.spec.versions) {
    try {
      const validate = ajv.compile(v.schema.openAPIV3Schema);
      if (v.served) validators.set(`${c.spec.group}/${v.name}/${c.spec.names.kind}`, { validate, schema: v.schema.openAPIV3Schema });
    } catch (err) {
      compileErrors.push(`${c.spec.names.kind} ${v.name}: ${(err as Error).message}`);
    }
  }

/** What the API server would make of obj (create, or update from old). */
function check(obj: KubeObject, old?: KubeObject): Verdict {
  const entry = validators.get(`${obj.apiVersion}/${obj.kind}`);
  if (!entry) throw new Error(`no served CRD version for ${obj.apiVersion} ${obj.kind}`);
  return verdictFor(entry.validate, entry.schema, obj, old);
}

const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** An IP's canonical text: the WHATWG URL serializer writes IPv6 as RFC 5952 does (lower case, first longest zero run, all hex). */
function canonicalIP(ip: string): string {
  return ip.includes(':') ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/** The documented IPClaim name of an IP (see manifests/crds/metallb.io_ipclaims.yaml). */
function ipClaimName(ip: string): string {
  if (!ip.includes(':')) return ip;
  const canonical = canonicalIP(ip);
  return `${canonical.startsWith(':') ? '0' : ''}${canonical.replaceAll(':', '-')}${canonical.endsWith(':') ? '0' : ''}`;
}

function objectsOf(file: string): KubeObject[] {
  return loadYaml(file).map((o) => {
    if (!isKubeObject(o)) throw new Error(`${file}: a document that is not a Kubernetes object`);
    return o;
  });
}

const fixtures = objectsOf(join(repoRoot, 'test/fixtures/config/crds.yaml'));
const samples = objectsOf(join(repoRoot, 'test/manifests/samples.yaml'));

/** A copy of obj with the changes merged into it (plain objects merge, anything else replaces). */
function edit(obj: KubeObject, changes: Record<string, unknown>): KubeObject {
  const merge = (base: unknown, patch: unknown): unknown => {
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
    const out: Record<string, unknown> = typeof base === 'object' && base !== null ? { ...(base as object) } : {};
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete out[k];
      else out[k] = merge(out[k], v);
    }
    return out;
  };
  return merge(structuredClone(obj), changes) as KubeObject;
}

function sample(kind: string, name: string): KubeObject {
  const found = [...samples, ...fixtures].find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no sample ${kind} ${name}`);
  return found;
}

// ---- tests ----------------------------------------------------------------------------------

describe('manifests/', () => {
  it('holds the namespace and one CRD file per kind', () => {
    expect(files.length).toBeGreaterThan(0);
    expect(loaded.length).toBeGreaterThan(0);
    expect(loaded.filter((l) => l.obj.kind === 'Namespace').map((l) => l.obj.metadata.name)).toEqual(['metallb-system']);
    expect(crds.map((c) => c.spec.names.kind).sort()).toEqual(catalogue.map((c) => c.kind).sort());
    for (const l of loaded.filter((x) => x.obj.kind === 'CustomResourceDefinition'))
      expect(l.file).toBe(`crds/metallb.io_${(l.obj as Crd).spec.names.plural}.yaml`);
  });

  it('are valid against the upstream Kubernetes schemas (kubernetes-models)', () => {
    for (const { file, obj } of loaded) {
      const model = models[`${obj.apiVersion}/${obj.kind}`];
      if (!model) throw new Error(`${file}: no model registered for ${obj.apiVersion} ${obj.kind}; add it to the table in this test`);
      expect(() => new model(structuredClone(obj) as never).validate()).not.toThrow();
    }
  });

  it('kubernetes-models does reject a broken CRD (the check above is not vacuous)', () => {
    const broken = edit(crd('IPClaim'), { spec: { scope: 7, versions: [{ name: 'v1beta1', additionalPrinterColumns: [{ name: 'x' }] }] } });
    expect(() => new CustomResourceDefinition(broken as never).validate()).toThrow(/scope|type|jsonPath|served/);
  });

  it('run the node agents in a namespace that allows hostNetwork and NET_RAW', () => {
    const ns = loaded.find((l) => l.obj.kind === 'Namespace')?.obj;
    const labels = ns?.metadata.labels as Record<string, string> | undefined;
    for (const mode of ['enforce', 'audit', 'warn']) expect(labels?.[`pod-security.kubernetes.io/${mode}`]).toBe('privileged');
  });
});

describe('CRDs', () => {
  it.each(catalogue)('$kind: group metallb.io, $scope, versions $versions, storage $storage', (want) => {
    const c = crd(want.kind);
    expect(c.metadata.name).toBe(`${want.plural}.metallb.io`);
    expect(c.spec.group).toBe('metallb.io');
    expect(c.spec.scope).toBe(want.scope);
    expect(c.spec.names).toMatchObject({ plural: want.plural, singular: want.kind.toLowerCase(), listKind: `${want.kind}List` });
    expect(c.spec.names.categories).toContain('metallb');
    expect(c.spec.versions.map((v) => v.name)).toEqual(want.versions);
    expect(c.spec.versions.filter((v) => v.storage).map((v) => v.name)).toEqual([want.storage]);
    for (const v of c.spec.versions) {
      expect(v.served).toBe(true);
      expect(v.subresources?.status).toEqual({});
      expect(v.schema.openAPIV3Schema.properties?.status?.type).toBe('object');
    }
  });

  it('have structural schemas that keep unknown fields nowhere unintended', () => {
    for (const c of crds)
      for (const v of c.spec.versions)
        expect({ [`${c.spec.names.kind} ${v.name}`]: structuralProblems(v.schema.openAPIV3Schema, preserveUnknownAllowed[c.spec.names.kind]) }).toEqual({
          [`${c.spec.names.kind} ${v.name}`]: [],
        });
  });

  it('have schemas ajv compiles in strict mode (no misspelt keyword) and defaults that fit them', () => {
    expect(compileErrors).toEqual([]);
    for (const c of crds)
      for (const v of c.spec.versions) {
        const schema = v.schema.openAPIV3Schema;
        const defaults: [string, Schema][] = [];
        const collect = (node: Schema, path: string): void => {
          if (node.default !== undefined) defaults.push([path, node]);
          for (const [k, child] of Object.entries(node.properties ?? {})) collect(child, `${path}.${k}`);
        };
        collect(schema, c.spec.names.kind);
        for (const [path, node] of defaults) {
          const { default: value, ...rest } = node;
          expect({ path, valid: kubernetesAjv().validate(rest, value) }).toEqual({ path, valid: true });
        }
      }
  });

  it('have CEL rules that parse', () => {
    const rules = crds.flatMap((c) => c.spec.versions.flatMap((v) => celRules(v.schema.openAPIV3Schema)));
    expect(rules.length).toBeGreaterThan(0);
    for (const { path, rule } of rules) expect({ path, rule, parses: (() => { try { parseCel(rule); return true; } catch { return false; } })() }).toEqual({ path, rule, parses: true });
  });

  it('have printer columns that point at fields of the right type', () => {
    for (const c of crds)
      for (const v of c.spec.versions)
        for (const col of v.additionalPrinterColumns ?? []) {
          const where = `${c.spec.names.kind} ${v.name} column ${col.name}`;
          if (col.jsonPath.startsWith('.metadata.')) {
            expect({ where, path: col.jsonPath, type: col.type }).toEqual({ where, path: '.metadata.creationTimestamp', type: 'date' });
            continue;
          }
          const node = schemaAtJsonPath(v.schema.openAPIV3Schema, col.jsonPath);
          expect({ where, found: node !== undefined }).toEqual({ where, found: true });
          if (col.type === 'integer' || col.type === 'boolean') expect({ where, type: node?.type }).toEqual({ where, type: col.type });
          if (col.type === 'date') expect({ where, format: node?.format }).toEqual({ where, format: 'date-time' });
        }
  });

  it('IPAddressPool shows auto-assign, buggy-IP avoidance, addresses, used and free', () => {
    const cols = version('IPAddressPool', 'v1beta1').additionalPrinterColumns ?? [];
    expect(cols.map((c) => [c.name.toUpperCase(), c.jsonPath])).toEqual([
      ['AUTO ASSIGN', '.spec.autoAssign'],
      ['AVOID BUGGY IPS', '.spec.avoidBuggyIPs'],
      ['ADDRESSES', '.spec.addresses'],
      ['USED', '.status.used'],
      ['FREE', '.status.free'],
      ['AGE', '.metadata.creationTimestamp'],
    ]);
    const status = version('IPAddressPool', 'v1beta1').schema.openAPIV3Schema.properties?.status?.properties ?? {};
    for (const counter of ['assignedIPv4', 'assignedIPv6', 'availableIPv4', 'availableIPv6'])
      expect(status[counter]).toMatchObject({ type: 'integer', minimum: 0 });
  });

  it('BGPPeer shows address, ASN, BFD profile and multi-hop, in both versions', () => {
    for (const v of ['v1beta1', 'v1beta2'])
      expect((version('BGPPeer', v).additionalPrinterColumns ?? []).map((c) => [c.name.toUpperCase(), c.jsonPath])).toEqual([
        ['ADDRESS', '.spec.peerAddress'],
        ['ASN', '.spec.peerASN'],
        ['BFD PROFILE', '.spec.bfdProfile'],
        ['MULTI HOPS', '.spec.ebgpMultiHop'],
        ['AGE', '.metadata.creationTimestamp'],
      ]);
  });

  it('BGPPeer v1beta1 is deprecated and identical to v1beta2, since no conversion webhook translates', () => {
    const c = crd('BGPPeer');
    expect(c.spec.conversion?.strategy ?? 'None').toBe('None');
    const v1 = version('BGPPeer', 'v1beta1');
    const v2 = version('BGPPeer', 'v1beta2');
    expect(v1.deprecated).toBe(true);
    expect(v1.deprecationWarning).toMatch(/v1beta2/);
    expect(v2.deprecated).toBeUndefined();
    expect(v1.schema).toEqual(v2.schema);
    expect(v1.additionalPrinterColumns).toEqual(v2.additionalPrinterColumns);
    expect(v1.subresources).toEqual(v2.subresources);
  });

  it('IPClaim is cluster-scoped, short-named ipc, and shows IP, pool, holders and age', () => {
    const c = crd('IPClaim');
    expect(c.spec.names.shortNames).toEqual(['ipc']);
    const cols = (version('IPClaim', 'v1beta1').additionalPrinterColumns ?? []).filter((col) => !col.priority);
    expect(cols.map((col) => [col.name.toUpperCase(), col.jsonPath])).toEqual([
      ['IP', '.spec.ip'],
      ['POOL', '.spec.pool'],
      ['HOLDERS', '.spec.holderNames'],
      ['AGE', '.metadata.creationTimestamp'],
    ]);
  });

  it('ConfigurationState is status-only and shows result and errors', () => {
    const v = version('ConfigurationState', 'v1beta1');
    expect(Object.keys(v.schema.openAPIV3Schema.properties ?? {}).sort()).toEqual(['apiVersion', 'kind', 'metadata', 'status']);
    expect((v.additionalPrinterColumns ?? []).filter((col) => !col.priority).map((col) => [col.name.toUpperCase(), col.jsonPath])).toEqual([
      ['RESULT', '.status.result'],
      ['ERRORS', '.status.errors'],
      ['AGE', '.metadata.creationTimestamp'],
    ]);
  });

  it("ServiceL2Status is MetalLB's: status-only, MetalLB's columns, node and Service fixed once written", () => {
    const c = crd('ServiceL2Status');
    expect(c.spec.names).toMatchObject({ kind: 'ServiceL2Status', listKind: 'ServiceL2StatusList', plural: 'servicel2statuses', singular: 'servicel2status' });
    const v = version('ServiceL2Status', 'v1beta1');
    expect(v.subresources).toEqual({ status: {} });
    expect(Object.keys(v.schema.openAPIV3Schema.properties ?? {}).sort()).toEqual(['apiVersion', 'kind', 'metadata', 'status']);
    expect(Object.keys(v.schema.openAPIV3Schema.properties?.status?.properties ?? {}).sort()).toEqual(['interfaces', 'node', 'serviceName', 'serviceNamespace']);
    expect((v.additionalPrinterColumns ?? []).filter((col) => !col.priority).map((col) => [col.name, col.jsonPath])).toEqual([
      ['Allocated Node', '.status.node'],
      ['Service Name', '.status.serviceName'],
      ['Service Namespace', '.status.serviceNamespace'],
      ['Age', '.metadata.creationTimestamp'],
    ]);
    const s = sample('ServiceL2Status', 'shop.web.node-1');
    expect(check(edit(s, { status: { interfaces: [] } }), s).ok).toBe(true);
    for (const field of ['node', 'serviceName', 'serviceNamespace']) expect(check(edit(s, { status: { [field]: 'other' } }), s).cel.join('\n')).toMatch(/Value is immutable/);
  });

  it("BGPSessionState is MetalLB's, with the fields kubectl metallb peers reads beside them", () => {
    const v = version('BGPSessionState', 'v1beta1');
    expect(v.subresources).toEqual({ status: {} });
    expect(Object.keys(v.schema.openAPIV3Schema.properties ?? {}).sort()).toEqual(['apiVersion', 'kind', 'metadata', 'status']);
    const fields = Object.keys(v.schema.openAPIV3Schema.properties?.status?.properties ?? {});
    // MetalLB's five, then ours; each read by core/diagnose/peers.ts.
    expect(fields).toEqual(['node', 'peer', 'vrf', 'bgpStatus', 'bfdStatus', 'lastTransitionTime', 'prefixesSent', 'prefixesReceived', 'holdTime', 'keepaliveTime', 'lastError']);
    const reader = readFileSync(join(repoRoot, 'core/diagnose/peers.ts'), 'utf8');
    expect(fields.filter((f) => !reader.includes(`'${f}'`) && !reader.includes(`.${f}`))).toEqual([]);
    const s = sample('BGPSessionState', 'node-1-192-0-2-254');
    expect(check(s).ok).toBe(true);
    expect(check(edit(s, { status: { prefixesSent: -1 } })).ok).toBe(false);
  });

  it('the IPClaim naming examples in its CRD file follow the documented encoding and decode back', () => {
    const text = readFileSync(join(manifestsDir, 'crds/metallb.io_ipclaims.yaml'), 'utf8');
    const examples = [...text.matchAll(/^#\s+(\S+)\s+->\s+(\S+)\s*$/gm)].map((m) => [m[1] as string, m[2] as string] as const);
    expect(examples.length).toBeGreaterThanOrEqual(5);
    for (const [ip, name] of examples) {
      expect({ ip, name: ipClaimName(ip) }).toEqual({ ip, name });
      expect(name).toMatch(dnsSubdomain);
      if (ip.includes(':')) expect(ipClaimName(name.replaceAll('-', ':'))).toBe(name);
      // The API server's rule (CEL on the root of the schema) agrees.
      const spec = { ip: canonicalIP(ip), pool: 'p', family: ip.includes(':') ? 'IPv6' : 'IPv4', holders: [{ namespace: 'n', name: 's' }] };
      const verdict = check({ apiVersion: 'metallb.io/v1beta1', kind: 'IPClaim', metadata: { name }, spec });
      expect({ ip, errors: verdict.errors, cel: verdict.cel }).toEqual({ ip, errors: [], cel: [] });
    }
  });
});

describe('custom resources against the CRD schemas', () => {
  const all = [...fixtures.map((o) => ['fixture', o] as const), ...samples.map((o) => ['sample', o] as const)];

  it('the fixture and sample files hold objects of every kind', () => {
    expect(fixtures.length).toBeGreaterThan(0);
    expect(new Set(all.map(([, o]) => o.kind))).toEqual(new Set(catalogue.map((c) => c.kind)));
    for (const c of catalogue)
      for (const v of c.versions) expect({ kind: c.kind, v, n: all.filter(([, o]) => o.apiVersion === `metallb.io/${v}` && o.kind === c.kind).length > 0 }).toEqual({ kind: c.kind, v, n: true });
  });

  it.each(all.map(([source, o]) => [source, o.kind, o.apiVersion, o.metadata.name, o] as const))(
    '%s %s (%s) %s is accepted with no field pruned',
    (_source, _kind, _apiVersion, _name, obj) => {
      const verdict = check(obj);
      expect({ errors: verdict.errors, cel: verdict.cel, pruned: verdict.pruned }).toEqual({ errors: [], cel: [], pruned: [] });
      expect(obj.metadata.name).toMatch(dnsSubdomain);
      const scope = crd(obj.kind).spec.scope;
      expect(obj.metadata.namespace === undefined).toBe(scope === 'Cluster');
    },
  );

  it('fills in the documented defaults', () => {
    expect(check(sample('IPAddressPool', 'sandbox')).defaulted.spec).toMatchObject({ autoAssign: true, avoidBuggyIPs: false });
    expect(check(sample('IPAddressPool', 'production')).defaulted.spec).toMatchObject({ autoAssign: false });
    expect(check(sample('BGPPeer', 'router')).defaulted.spec).toMatchObject({ peerPort: 179 });
    // No default for disableMP: the API server would write it into every peer, and core/config
    // reports disableMP as unsupported wherever it appears.
    expect(check(sample('BGPPeer', 'router')).defaulted.spec).not.toHaveProperty('disableMP');
    expect(check(sample('BGPAdvertisement', 'production')).defaulted.spec).toMatchObject({ aggregationLength: 32, aggregationLengthV6: 128 });
  });

  it('IPClaim names of the samples are the encoding of their IP', () => {
    for (const o of samples.filter((s) => s.kind === 'IPClaim')) expect(o.metadata.name).toBe(ipClaimName((o.spec as { ip: string }).ip));
  });

  const pool = (): KubeObject => sample('IPAddressPool', 'tenants');
  const peer = (): KubeObject => sample('BGPPeer', 'full');
  const legacyPeer = (): KubeObject => sample('BGPPeer', 'legacy');
  const adv = (): KubeObject => sample('BGPAdvertisement', 'production');
  const claim = (): KubeObject => sample('IPClaim', '2001-db8-1--5');
  const bfd = (): KubeObject => sample('BFDProfile', 'fast');
  const state = (): KubeObject => sample('ConfigurationState', 'agent-node-1');
  const l2 = (): KubeObject => sample('L2Advertisement', 'east');

  const rejected: [string, () => KubeObject, RegExp][] = [
    ['IPAddressPool autoAssign "yes"', () => edit(pool(), { spec: { autoAssign: 'yes' } }), /\/spec\/autoAssign must be boolean/],
    ['IPAddressPool without addresses', () => edit(pool(), { spec: { addresses: undefined } }), /must have required property 'addresses'/],
    ['IPAddressPool with no address', () => edit(pool(), { spec: { addresses: [] } }), /\/spec\/addresses must NOT have fewer than 1 items/],
    ['IPAddressPool without spec', () => edit(pool(), { spec: undefined }), /must have required property 'spec'/],
    ['IPAddressPool priority "high"', () => edit(pool(), { spec: { serviceAllocation: { priority: 'high' } } }), /priority must be integer/],
    ['IPAddressPool status.free -1', () => edit(pool(), { status: { free: '-1' } }), /\/status\/free must match pattern/],
    ['BGPPeer peerPort 70000', () => edit(peer(), { spec: { peerPort: 70000 } }), /\/spec\/peerPort must be <= 65535/],
    ['BGPPeer peerPort 0', () => edit(peer(), { spec: { peerPort: 0 } }), /\/spec\/peerPort must be >= 1/],
    ['BGPPeer myASN 2^32', () => edit(peer(), { spec: { myASN: 4294967296 } }), /\/spec\/myASN must be <= 4294967295/],
    ['BGPPeer without peerAddress', () => edit(peer(), { spec: { peerAddress: undefined } }), /required property 'peerAddress'/],
    ['BGPPeer holdTime "90 seconds"', () => edit(peer(), { spec: { holdTime: '90 seconds' } }), /\/spec\/holdTime must match format "duration"/],
    ['BGPPeer routerID "router-1"', () => edit(peer(), { spec: { routerID: 'router-1' } }), /\/spec\/routerID must match format "ipv4"/],
    ['BGPPeer dynamicASN "any"', () => edit(peer(), { spec: { dynamicASN: 'any' } }), /\/spec\/dynamicASN must be equal to one of the allowed values/],
    ['BGPPeer both peerASN and dynamicASN', () => edit(peer(), { spec: { peerASN: 64513 } }), /exactly one of peerASN and dynamicASN/],
    ['BGPPeer neither peerASN nor dynamicASN', () => edit(legacyPeer(), { spec: { peerASN: undefined } }), /exactly one of peerASN and dynamicASN/],
    ['BGPPeer password and passwordSecret', () => edit(peer(), { spec: { password: 'x' } }), /password and passwordSecret are mutually exclusive/],
    ['BGPPeer connectTime 500ms', () => edit(peer(), { spec: { connectTime: '500ms' } }), /between 1 and 65535 seconds/],
    ['BGPPeer connectTime 1.5s', () => edit(peer(), { spec: { connectTime: '1.5s' } }), /whole number of seconds/],
    ['BGPPeer v1beta1 peerPort 70000', () => edit(legacyPeer(), { spec: { peerPort: 70000 } }), /\/spec\/peerPort must be <= 65535/],
    ['selector operator "Like"', () => edit(l2(), { spec: { nodeSelectors: [{ matchExpressions: [{ key: 'a', operator: 'Like' }] }] } }), /operator must be equal to one of the allowed values/],
    ['L2Advertisement preferred weight 0', () => edit(l2(), { spec: { preferredNodeSelectors: [{ weight: 0, preference: {} }] } }), /weight must be >= 1/],
    ['L2Advertisement preferred weight 101', () => edit(l2(), { spec: { preferredNodeSelectors: [{ weight: 101, preference: {} }] } }), /weight must be <= 100/],
    ['L2Advertisement preferred without preference', () => edit(l2(), { spec: { preferredNodeSelectors: [{ weight: 1 }] } }), /must have required property 'preference'/],
    ['selector without key', () => edit(l2(), { spec: { nodeSelectors: [{ matchExpressions: [{ operator: 'Exists' }] }] } }), /must have required property 'key'/],
    ['BGPAdvertisement aggregationLength 200', () => edit(adv(), { spec: { aggregationLength: 200 } }), /\/spec\/aggregationLength must be <= 32/],
    ['BGPAdvertisement aggregationLengthV6 129', () => edit(adv(), { spec: { aggregationLengthV6: 129 } }), /\/spec\/aggregationLengthV6 must be <= 128/],
    ['BGPAdvertisement localPref -1', () => edit(adv(), { spec: { localPref: -1 } }), /\/spec\/localPref must be >= 0/],
    ['BFDProfile receiveInterval 5', () => edit(bfd(), { spec: { receiveInterval: 5 } }), /\/spec\/receiveInterval must be >= 10/],
    ['BFDProfile detectMultiplier 256', () => edit(bfd(), { spec: { detectMultiplier: 256 } }), /\/spec\/detectMultiplier must be <= 255/],
    ['BFDProfile minimumTtl 255', () => edit(bfd(), { spec: { minimumTtl: 255 } }), /\/spec\/minimumTtl must be <= 254/],
    ['Community alias without value', () => edit(sample('Community', 'aliases'), { spec: { communities: [{ name: 'x' }] } }), /must have required property 'value'/],
    ['IPClaim family IPv5', () => edit(claim(), { spec: { family: 'IPv5' } }), /\/spec\/family must be equal to one of the allowed values/],
    ['IPClaim without holders', () => edit(claim(), { spec: { holders: [] } }), /\/spec\/holders must NOT have fewer than 1 items/],
    ['IPClaim holder without name', () => edit(claim(), { spec: { holders: [{ namespace: 'a' }] } }), /must have required property 'name'/],
    ['IPClaim upper-case IPv6', () => edit(claim(), { spec: { ip: '2001:DB8:1::5' } }), /\/spec\/ip must match pattern/],
    ['IPClaim family not matching ip', () => edit(claim(), { spec: { family: 'IPv4' } }), /family must match ip/],
    ['IPClaim named after another IP', () => edit(claim(), { metadata: { name: '2001-db8-1--6' } }), /name of an IPClaim must be its IP/],
    ['IPClaim named with colons', () => edit(claim(), { metadata: { name: '2001:db8:1::5' } }), /name of an IPClaim must be its IP/],
    ['ConfigurationState result "Maybe"', () => edit(state(), { status: { result: 'Maybe' } }), /\/status\/result must be equal to one of the allowed values/],
    ['ConfigurationState lastValidAt "yesterday"', () => edit(state(), { status: { lastValidAt: 'yesterday' } }), /\/status\/lastValidAt must match format "date-time"/],
  ];

  it.each(rejected)('rejects %s', (_what, make, why) => {
    const verdict = check(make());
    expect(verdict.ok).toBe(false);
    expect([...verdict.errors, ...verdict.cel].join('\n')).toMatch(why);
  });

  it('reports a misspelt field as pruned rather than silently accepting it', () => {
    const verdict = check(edit(pool(), { spec: { autoassign: false, serviceAllocation: { namespace: ['x'] } }, extra: 1 }));
    expect(verdict.pruned.sort()).toEqual(['extra', 'spec.autoassign', 'spec.serviceAllocation.namespace']);
    expect(check(edit(sample('L2Advertisement', 'sandbox-l2'), { status: { anything: 1 } })).pruned).toEqual(['status.anything']);
  });

  it('keeps enableGracefulRestart fixed after creation (a transition rule)', () => {
    const before = peer();
    expect(check(edit(before, { spec: { enableGracefulRestart: true, holdTime: '3m' } }), before).cel).toEqual([]);
    expect(check(edit(before, { spec: { enableGracefulRestart: false } }), before).cel.join()).toMatch(/cannot be changed after creation/);
  });
});
