/**
 * Offline validation of configuration files: the same parser the controller and agents run,
 * fed from YAML files instead of the API server, with each finding traced back to its file,
 * document and line.
 */
import { CONFIG_MAP_NAME, DEFAULT_NAMESPACE } from '../../kube/names.js';
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, parseDocument, type Document, type Node } from 'yaml';
import { Allocator } from '../../core/allocator/index.js';
import { formatIP } from '../../core/ip/index.js';
import { parseConfig, type Config, type ConfigInput, type Place, type SecretInput } from '../../core/config/index.js';

const METALLB_GROUP = 'metallb.io';

/** A file's text as read from disk. */
export interface SourceFile {
  path: string;
  text: string;
}

/** Where a finding came from: the file, the 1-based document and line within it, and the object if known. */
export interface Location {
  file: string;
  document?: number;
  line?: number;
  object?: string;
}

export interface Finding {
  location: Location;
  /** Place inside the object (`spec.addresses[0]`, `address-pools[1].cidr[0]`); empty for the whole. */
  path: string;
  message: string;
  /** The other place a conflict involves (where a duplicate name was first defined). */
  related?: Location;
}

export interface CheckReport {
  /** In file, document and line order. */
  errors: Finding[];
  /** References that cannot be resolved offline yet (an object or Secret not among the files). */
  pending: Finding[];
  /** Accepted, as MetalLB accepts them, but worth changing: the message says to what. */
  warnings: Finding[];
  /** Documents that are not MetalLB configuration and were skipped. */
  ignored: Finding[];
  summary: ConfigSummary;
}

export interface ConfigSummary {
  /** `addresses`: the addresses Services can get (without .0/.255 when the pool avoids them), as the pool status counts them. */
  pools: { name: string; addresses: string; ranges: string[]; autoAssign: boolean }[];
  peers: { name: string; peerAddress: string; peerASN: number; myASN: number }[];
  l2Advertisements: number;
  bgpAdvertisements: number;
}

export interface CheckOptions {
  /** The namespace MetalLB runs in; its configuration must be there. Default metallb-system. */
  namespace?: string;
}

interface Doc {
  /** Position of the file in the arguments, for ordering. */
  fileIndex: number;
  location: Location;
  object: Record<string, unknown>;
  yaml: Document.Parsed;
  lines: LineCounter;
}

/** Validate every MetalLB document in the files, together, as one configuration. */
export function checkFiles(files: SourceFile[], options: CheckOptions = {}): CheckReport {
  const namespace = options.namespace || DEFAULT_NAMESPACE;
  const errors: Ordered[] = [];
  const ignored: Finding[] = [];
  const docs: Doc[] = [];

  files.forEach((file, fileIndex) => {
    const lines = new LineCounter();
    const parsed = parseAllDocuments(file.text, { prettyErrors: false, lineCounter: lines });
    // parseAllDocuments returns a bare array (EmptyStream) for an empty input.
    const list = Array.isArray(parsed) ? parsed : [];
    if (list.length === 0) {
      errors.push({ fileIndex, finding: { location: { file: file.path }, path: '', message: 'file holds no YAML documents' } });
      return;
    }
    list.forEach((doc, i) => {
      const location: Location = { file: file.path, document: i + 1 };
      const start = doc.contents?.range[0] ?? doc.range[0];
      location.line = lines.linePos(start).line;
      if (doc.errors.length > 0) {
        for (const e of doc.errors) {
          const pos = lines.linePos(e.pos[0]);
          errors.push({
            fileIndex,
            finding: { location: { ...location, line: pos.line }, path: '', message: `invalid YAML at line ${pos.line}, column ${pos.col}: ${yamlMessage(e.message)}` },
          });
        }
        return;
      }
      let object: unknown;
      try {
        object = doc.toJS({ maxAliasCount: 100 });
      } catch (e) {
        // Aliases that would expand without bound ("billion laughs") end here.
        errors.push({ fileIndex, finding: { location, path: '', message: `invalid YAML: ${yamlMessage(e instanceof Error ? e.message : String(e))}` } });
        return;
      }
      if (object === null || object === undefined) return; // an empty document between `---` separators
      if (typeof object !== 'object' || Array.isArray(object)) {
        errors.push({ fileIndex, finding: { location, path: '', message: 'document is not a Kubernetes object (expected a mapping)' } });
        return;
      }
      docs.push({ fileIndex, location, object: object as Record<string, unknown>, yaml: doc, lines });
    });
  });

  const input: ConfigInput & { secrets: Record<string, SecretInput> } = { resources: [], secrets: {}, namespace };
  /** The document of each entry of input.resources, by index: the parser names objects by index. */
  const resourceDocs: Doc[] = [];
  let configMapDoc: Doc | undefined;

  for (const d of docs) {
    const { location, object } = d;
    const kind = typeof object.kind === 'string' ? object.kind : '';
    const apiVersion = typeof object.apiVersion === 'string' ? object.apiVersion : '';
    const meta = isRecord(object.metadata) ? object.metadata : {};
    const name = typeof meta.name === 'string' ? meta.name : '';
    const ns = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : namespace;
    location.object = `${kind} ${ns}/${name}`;

    if (apiVersion === 'v1' && kind === 'ConfigMap' && ns === namespace && name === CONFIG_MAP_NAME) {
      if (configMapDoc) {
        errors.push({
          fileIndex: d.fileIndex,
          finding: { location, path: 'metadata.name', message: `ConfigMap ${ns}/${name} is also defined in ${describe(configMapDoc.location)}` },
        });
        continue;
      }
      const data = isRecord(object.data) ? object.data : {};
      if (typeof data.config !== 'string') {
        errors.push({ fileIndex: d.fileIndex, finding: { location, path: 'data.config', message: 'the ConfigMap has no key "config" holding the configuration text' } });
        continue;
      }
      configMapDoc = d;
      input.configMap = { namespace: ns, name, text: data.config };
    } else if (apiVersion === 'v1' && kind === 'Secret') {
      const data = isRecord(object.data) ? object.data : {};
      const stringData = isRecord(object.stringData) ? object.stringData : {};
      const merged: Record<string, string> = {};
      for (const [k, v] of Object.entries(data)) if (typeof v === 'string') merged[k] = v;
      // stringData is what people write by hand; the API server would base64 it into data.
      for (const [k, v] of Object.entries(stringData)) if (typeof v === 'string') merged[k] = Buffer.from(v).toString('base64');
      // The API server gives a Secret without a type the type Opaque.
      input.secrets[`${ns}/${name}`] = { type: typeof object.type === 'string' && object.type !== '' ? object.type : 'Opaque', data: merged };
    } else if (apiVersion.split('/')[0] === METALLB_GROUP) {
      resourceDocs.push(d);
      input.resources.push(object);
    } else {
      ignored.push({ location, path: '', message: `not MetalLB configuration (${apiVersion || 'no apiVersion'} ${kind || 'no kind'}), skipped` });
    }
  }

  const result = parseConfig(input);
  const locate = (p: Place): { fileIndex: number; location: Location } => {
    const d = p.resource !== undefined ? resourceDocs[p.resource] : p.source.startsWith('ConfigMap ') ? configMapDoc : undefined;
    if (d === undefined) return { fileIndex: files.length, location: { file: files.length === 1 ? files[0]!.path : '(all files)', object: p.source } };
    const line = d === configMapDoc && p.resource === undefined ? configLine(d, p.path) : lineOf(d.yaml, d.lines, p.path);
    return { fileIndex: d.fileIndex, location: { ...d.location, ...(line !== undefined ? { line } : {}) } };
  };
  const finding = (p: Place & { message: string; related?: Place }): Ordered => {
    const { fileIndex, location } = locate(p);
    const related = p.related ? locate(p.related).location : undefined;
    return { fileIndex, finding: { location, path: p.path, message: p.message, ...(related ? { related } : {}) } };
  };
  errors.push(...result.errors.map(finding));

  return {
    errors: inOrder(errors),
    pending: inOrder(result.pending.map(finding)),
    warnings: inOrder(result.warnings.map(finding)),
    ignored,
    summary: summarize(result.config),
  };
}

interface Ordered {
  fileIndex: number;
  finding: Finding;
}

/** File (in the order given), document, line; findings at one line keep the parser's order. */
function inOrder(list: readonly Ordered[]): Finding[] {
  return list
    .map((o, i) => ({ ...o, i }))
    .sort(
      (a, b) =>
        a.fileIndex - b.fileIndex ||
        (a.finding.location.document ?? 0) - (b.finding.location.document ?? 0) ||
        (a.finding.location.line ?? 0) - (b.finding.location.line ?? 0) ||
        a.i - b.i,
    )
    .map((o) => o.finding);
}

/** The line of `path` (`spec.addresses[0]`, `metadata.labels.example.com/tier`) in a document, or of the deepest part of it found. */
function lineOf(doc: Document.Parsed, lines: LineCounter, path: string): number | undefined {
  let node: unknown = doc.contents;
  let rest = path;
  let offset = (node as Node | null)?.range?.[0];
  while (rest !== '' && node) {
    const index = /^\[(\d+)\]\.?/.exec(rest);
    if (index) {
      if (!isSeq(node)) break;
      const item: unknown = node.items[Number(index[1])];
      if (!item) break;
      node = item;
      offset = (item as Node).range?.[0] ?? offset;
      rest = rest.slice(index[0].length);
      continue;
    }
    if (!isMap(node)) break;
    // Keys may hold dots themselves (label keys): take the longest key the path starts with.
    let best: { key: string; value: unknown; at: number | undefined } | undefined;
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key === undefined || (best && best.key.length >= key.length)) continue;
      if (rest === key || rest.startsWith(`${key}.`) || rest.startsWith(`${key}[`)) best = { key, value: pair.value, at: (pair.key as Node).range?.[0] };
    }
    if (!best) break;
    node = best.value;
    offset = best.at ?? offset;
    rest = rest.slice(best.key.length).replace(/^\./, '');
  }
  return offset === undefined ? undefined : lines.linePos(offset).line;
}

/** The line, in the file, of a path inside the ConfigMap's `config` text. */
function configLine(d: Doc, path: string): number | undefined {
  const data = isMap(d.yaml.contents) ? d.yaml.contents.get('data', true) : undefined;
  const text = isMap(data) ? data.get('config', true) : undefined;
  if (!isScalar(text) || typeof text.value !== 'string' || !text.range) return d.location.line;
  const outer = d.lines.linePos(text.range[0]).line;
  if (path === '') return outer;
  const inner = new LineCounter();
  const parsed = parseDocument(text.value, { lineCounter: inner });
  const line = lineOf(parsed, inner, path);
  if (line === undefined) return outer;
  // A block scalar's text starts on the line after its `|`; a quoted one on the same line.
  const block = text.type === 'BLOCK_LITERAL' || text.type === 'BLOCK_FOLDED';
  return outer + line - (block ? 0 : 1);
}

function summarize(config: Config): ConfigSummary {
  // The pool status and the allocator count addresses this way (without .0/.255 when avoided).
  const allocator = new Allocator(config.pools);
  return {
    pools: config.pools.map((pool) => ({
      name: pool.name,
      addresses: (allocator.usage(pool.name)?.size ?? 0n).toString(),
      ranges: pool.ranges.map((r) => r.text),
      autoAssign: pool.autoAssign,
    })),
    peers: config.peers.map((p) => ({ name: p.name, peerAddress: formatIP(p.peerAddress), peerASN: p.peerASN, myASN: p.myASN })),
    l2Advertisements: config.l2Advertisements.length,
    bgpAdvertisements: config.bgpAdvertisements.length,
  };
}

/** `file`, `file:12 document 2`, `file:12 document 2 (IPAddressPool metallb-system/prod)`. */
export function describe(location: Location): string {
  let text = location.file;
  if (location.line !== undefined) text += `:${location.line}`;
  if (location.document !== undefined) text += ` document ${location.document}`;
  if (location.object) text += ` (${location.object})`;
  return text;
}

/** One line per finding: `file:line document N (Kind ns/name): path: message (see other place)`. */
export function formatFinding(f: Finding): string {
  const related = f.related ? ` (see ${describe({ ...f.related, object: undefined })})` : '';
  return `${describe(f.location)}: ${f.path ? `${f.path}: ` : ''}${f.message}${related}`;
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

/** The first line of a YAML error, without a dangling colon that announced the context left out. */
function yamlMessage(message: string): string {
  return (message.split('\n')[0] ?? message).trim().replace(/:$/, '');
}
