/**
 * Offline validation of configuration files: the same parser the controller and agents run,
 * fed from YAML files instead of the API server, with each finding traced back to its file
 * and document.
 */
import { CONFIG_MAP_NAME, DEFAULT_NAMESPACE } from '../../kube/names.js';
import { parseAllDocuments } from 'yaml';
import { formatIP } from '../../core/ip/index.js';
import { parseConfig, type Config, type ConfigInput } from '../../core/config/index.js';

const CONFIG_NAMESPACE = DEFAULT_NAMESPACE;
const CONFIG_NAME = CONFIG_MAP_NAME;
const METALLB_GROUP = 'metallb.io';

/** A file's text as read from disk. */
export interface SourceFile {
  path: string;
  text: string;
}

/** Where a finding came from: the file, the 1-based document within it, and the object if known. */
export interface Location {
  file: string;
  document?: number;
  object?: string;
}

export interface Finding {
  location: Location;
  /** Place inside the object (`spec.addresses[0]`, `address-pools[1].cidr[0]`); empty for the whole. */
  path: string;
  message: string;
}

export interface CheckReport {
  errors: Finding[];
  /** References that cannot be resolved offline (a password Secret not among the files). */
  pending: Finding[];
  /** Documents that are not MetalLB configuration and were skipped. */
  ignored: Finding[];
  summary: ConfigSummary;
}

export interface ConfigSummary {
  pools: { name: string; addresses: string; ranges: string[]; autoAssign: boolean }[];
  peers: { name: string; peerAddress: string; peerASN: number; myASN: number }[];
  l2Advertisements: number;
  bgpAdvertisements: number;
}

interface Doc {
  location: Location;
  object: Record<string, unknown>;
}

/** Validate every MetalLB document in the files, together, as one configuration. */
export function checkFiles(files: SourceFile[]): CheckReport {
  const errors: Finding[] = [];
  const ignored: Finding[] = [];
  const docs: Doc[] = [];

  for (const file of files) {
    const parsed = parseAllDocuments(file.text, { prettyErrors: true });
    // parseAllDocuments returns a bare array (EmptyStream) for an empty input.
    const list = Array.isArray(parsed) ? parsed : [];
    if (list.length === 0) {
      errors.push({ location: { file: file.path }, path: '', message: 'file holds no YAML documents' });
      continue;
    }
    list.forEach((doc, i) => {
      const location: Location = { file: file.path, document: i + 1 };
      if (doc.errors.length > 0) {
        for (const e of doc.errors) errors.push({ location, path: '', message: `invalid YAML: ${oneLine(e.message)}` });
        return;
      }
      const object: unknown = doc.toJS();
      if (object === null || object === undefined) return; // an empty document between `---` separators
      if (typeof object !== 'object' || Array.isArray(object)) {
        errors.push({ location, path: '', message: 'document is not a Kubernetes object (expected a mapping)' });
        return;
      }
      docs.push({ location, object: object as Record<string, unknown> });
    });
  }

  const input: ConfigInput = { resources: [], secrets: {} };
  // The parser names objects as "Kind namespace/name"; this maps those names back to files.
  const whereIs = new Map<string, Location>();
  let configMapAt: Location | undefined;

  for (const { location, object } of docs) {
    const kind = typeof object.kind === 'string' ? object.kind : '';
    const apiVersion = typeof object.apiVersion === 'string' ? object.apiVersion : '';
    const meta = isRecord(object.metadata) ? object.metadata : {};
    const name = typeof meta.name === 'string' ? meta.name : '';
    const namespace = typeof meta.namespace === 'string' ? meta.namespace : CONFIG_NAMESPACE;
    const id = `${kind} ${namespace}/${name}`;
    location.object = id;

    if (apiVersion === 'v1' && kind === 'ConfigMap' && namespace === CONFIG_NAMESPACE && name === CONFIG_NAME) {
      if (configMapAt) {
        errors.push({ location, path: 'metadata.name', message: `ConfigMap ${namespace}/${name} is also defined in ${describe(configMapAt)}` });
        continue;
      }
      const data = isRecord(object.data) ? object.data : {};
      if (typeof data.config !== 'string') {
        errors.push({ location, path: 'data.config', message: 'the ConfigMap has no key "config" holding the configuration text' });
        continue;
      }
      configMapAt = location;
      whereIs.set(id, location);
      input.configMap = { namespace, name, text: data.config };
    } else if (apiVersion === 'v1' && kind === 'Secret') {
      const data = isRecord(object.data) ? object.data : {};
      const stringData = isRecord(object.stringData) ? object.stringData : {};
      const merged: Record<string, string> = {};
      for (const [k, v] of Object.entries(data)) if (typeof v === 'string') merged[k] = v;
      // stringData is what people write by hand; the API server would base64 it into data.
      for (const [k, v] of Object.entries(stringData)) if (typeof v === 'string') merged[k] = Buffer.from(v).toString('base64');
      input.secrets![`${namespace}/${name}`] = merged;
    } else if (apiVersion.split('/')[0] === METALLB_GROUP) {
      whereIs.set(id, location);
      input.resources.push(object);
    } else {
      ignored.push({ location, path: '', message: `not MetalLB configuration (${apiVersion || 'no apiVersion'} ${kind || 'no kind'}), skipped` });
    }
  }

  const result = parseConfig(input);
  const locate = (source: string): Location => whereIs.get(source) ?? { file: files.length === 1 ? files[0]!.path : '(all files)', object: source };
  for (const e of result.errors) errors.push({ location: locate(e.source), path: e.path, message: e.message });
  const pending = result.pending.map((p) => ({ location: locate(p.source), path: p.path, message: p.message }));

  return { errors, pending, ignored, summary: summarize(result.config) };
}

function summarize(config: Config): ConfigSummary {
  return {
    pools: config.pools.map((pool) => {
      let size = 0n;
      for (const r of pool.ranges) size += r.last - r.first + 1n;
      return {
        name: pool.name,
        addresses: size.toString(),
        ranges: pool.ranges.map((r) => r.text),
        autoAssign: pool.autoAssign,
      };
    }),
    peers: config.peers.map((p) => ({ name: p.name, peerAddress: formatIP(p.peerAddress), peerASN: p.peerASN, myASN: p.myASN })),
    l2Advertisements: config.l2Advertisements.length,
    bgpAdvertisements: config.bgpAdvertisements.length,
  };
}

/** `file`, `file document 2`, `file document 2 (IPAddressPool metallb-system/prod)`. */
export function describe(location: Location): string {
  let text = location.file;
  if (location.document !== undefined) text += ` document ${location.document}`;
  if (location.object) text += ` (${location.object})`;
  return text;
}

/** One line per finding: `file document N (Kind ns/name): path: message`. */
export function formatFinding(f: Finding): string {
  return `${describe(f.location)}: ${f.path ? `${f.path}: ` : ''}${f.message}`;
}

/** The one-line verdict for a valid configuration. */
export function formatSummary(s: ConfigSummary): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const pools = s.pools.map((p) => `${p.name} (${p.addresses} addresses${p.autoAssign ? '' : ', manual'})`).join(', ');
  const peers = s.peers.map((p) => `${p.peerAddress} AS${p.peerASN}`).join(', ');
  return (
    `configuration is valid: ${plural(s.pools.length, 'pool')}${pools ? ` [${pools}]` : ''}, ` +
    `${plural(s.peers.length, 'BGP peer')}${peers ? ` [${peers}]` : ''}, ` +
    `${plural(s.l2Advertisements, 'L2 advertisement')}, ${plural(s.bgpAdvertisements, 'BGP advertisement')}`
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function oneLine(message: string): string {
  return message.split('\n')[0]!.trim();
}
