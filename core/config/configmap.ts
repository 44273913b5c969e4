/**
 * The legacy ConfigMap `metallb-system/config` (key `config`), converted the way MetalLB's own
 * configmaptocrs tool does: pools become IPAddressPools, a layer2 pool gets an L2Advertisement
 * of its own, a bgp pool one BGPAdvertisement per `bgp-advertisements` entry (or a default
 * one), peers become BGPPeers named peer1, peer2, ... Errors use the ConfigMap's own spelling.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { emptyDeclarations, type Declarations, type L2Decl } from './declarations.js';
import { advertisementTuningKeys, bfdKeys, peerKeys, readAdvertisementTuning, readBFDProfile, readPeer, readRanges } from './objects.js';
import { parseCommunity } from './community.js';
import { at, Reader, type Fields, type Report } from './read.js';
import type { Origin } from './types.js';

/** The ConfigMap's identity (for messages and origins) and its `config` text. */
export interface ConfigMapInput {
  namespace: string;
  name: string;
  text: string;
}

const TOP_KEYS = ['peers', 'address-pools', 'communities', 'bgp-communities', 'bfd-profiles'];
const POOL_KEYS = ['name', 'protocol', 'cidr', 'addresses', 'auto-assign', 'avoid-buggy-ips', 'bgp-advertisements'];

/** Aliases are a YAML feature, but a few nested ones can expand to gigabytes ("billion laughs"). */
const MAX_ALIAS_COUNT = 100;
/** Deeper than any real configuration; bounds the recursion over hostile input. */
const MAX_DEPTH = 64;

/** Read the ConfigMap's YAML into declarations; every finding lands in `report`. */
export function readConfigMap(cm: ConfigMapInput, report: Report): Declarations {
  const out = emptyDeclarations();
  const source = `ConfigMap ${cm.namespace}/${cm.name}`;
  const loaded = loadYAML(cm.text);
  if ('error' in loaded) {
    report.errors.push({ source, path: '', message: loaded.error });
    return out;
  }
  const r = new Reader(source, report, { legacy: { scalarText: loaded.scalarText } });
  const top = r.fields(loaded.value, '');
  if (top === undefined) return out;
  r.onlyKnown(top, '', TOP_KEYS);
  const origin = (path: string): Origin => ({ kind: 'ConfigMap', namespace: cm.namespace, name: cm.name, path });

  // The same alias map under both spellings MetalLB has used over the years.
  for (const key of ['communities', 'bgp-communities']) {
    for (const [name, v] of Object.entries(r.fields(top[key], key) ?? {})) {
      const path = at(key, name);
      const text = r.stringValue(v, path);
      let community;
      if (text !== undefined) {
        const parsed = parseCommunity(text);
        if (parsed.ok) community = parsed.value;
        else r.fail(path, parsed.error);
      } else if (v === null) {
        r.fail(path, 'must be a community like "1234:1", got nothing');
      }
      out.aliases.push({ name, community, source, path });
    }
  }

  listOf(r, top, 'bfd-profiles').forEach(({ m, path }) => {
    const before = r.errorCount;
    r.onlyKnown(m, path, ['name', ...bfdKeys('kebab')]);
    const name = r.required(m, 'name', path, r.string(m, 'name', path));
    if (name === '') r.fail(at(path, 'name'), 'must not be empty');
    const value = readBFDProfile(r, m, path, 'kebab', name ?? '', origin(path));
    if (name) out.bfdProfiles.push({ value, source, path, namePath: at(path, 'name'), ok: r.errorCount === before });
  });

  listOf(r, top, 'peers').forEach(({ m, path }, i) => {
    const before = r.errorCount;
    r.onlyKnown(m, path, peerKeys('kebab'));
    const name = `peer${i + 1}`;
    const read = readPeer(r, m, path, 'kebab', name, origin(path), cm.namespace);
    if (read) {
      out.peers.push({
        value: read.peer,
        source,
        path,
        namePath: path,
        ok: r.errorCount === before,
        paths: read.paths,
      });
    }
  });

  let l2Index = 0;
  let bgpIndex = 0;
  listOf(r, top, 'address-pools').forEach(({ m, path }) => {
    const before = r.errorCount;
    r.onlyKnown(m, path, POOL_KEYS);
    const name = r.required(m, 'name', path, r.string(m, 'name', path));
    if (name === '') r.fail(at(path, 'name'), 'must not be empty');
    const protocolText = r.required(m, 'protocol', path, r.string(m, 'protocol', path));
    const protocol = protocolText === 'bgp' || protocolText === 'layer2' ? protocolText : undefined;
    if (protocolText !== undefined && protocol === undefined) {
      r.fail(at(path, 'protocol'), `unknown protocol ${JSON.stringify(protocolText)} (use bgp or layer2)`);
    }
    // `cidr` is the older name of `addresses`; both hold CIDRs and a-b ranges.
    const ranges = [];
    const rangePaths = [];
    for (const key of ['cidr', 'addresses']) {
      const read = readRanges(r, r.list(m, key, path) ?? [], at(path, key));
      ranges.push(...read.ranges);
      rangePaths.push(...read.paths);
    }
    const written = (['cidr', 'addresses'] as const).some((k) => Array.isArray(m[k]) && (m[k] as unknown[]).length > 0);
    if (!written) r.fail(path, `pool ${JSON.stringify(name ?? '')} has no addresses: add CIDRs or a-b ranges under "addresses"`);
    const autoAssign = r.bool(m, 'auto-assign', path) ?? true;
    const avoidBuggyIPs = r.bool(m, 'avoid-buggy-ips', path) ?? false;

    // An empty entry (`- ` alone) is one advertisement with the defaults, as in MetalLB's own examples.
    const advItems = listOf(r, m, 'bgp-advertisements', path, { emptyEntry: {} });
    if (protocol === 'layer2' && advItems.length > 0) {
      r.fail(
        at(path, 'bgp-advertisements'),
        `pool ${JSON.stringify(name ?? '')} is a layer2 pool and cannot have bgp-advertisements (aggregation, localpref and communities are BGP attributes)`,
      );
    }
    const poolOk = r.errorCount === before;
    if (!name) return;
    out.pools.push({
      value: { name, origin: origin(path), labels: {}, ranges, autoAssign, avoidBuggyIPs, ...(protocol ? { protocol } : {}) },
      source,
      path,
      namePath: at(path, 'name'),
      ok: poolOk,
      rangePaths,
    });

    const poolRefs = [{ text: name, path: at(path, 'name') }];
    if (protocol === 'layer2') {
      l2Index++;
      const l2: L2Decl = {
        value: {
          name: `l2advertisement${l2Index}`,
          origin: origin(path),
          ipAddressPools: [name],
          ipAddressPoolSelectors: [],
          nodeSelectors: [],
          preferredNodeSelectors: [],
          interfaces: [],
        },
        source,
        path,
        namePath: path,
        ok: poolOk,
        poolRefs,
      };
      out.l2Advertisements.push(l2);
    }
    if (protocol !== 'bgp') return;
    const entries = advItems.length > 0 ? advItems : [{ m: {} as Fields, path }];
    // Two equal entries announce the same routes twice: MetalLB refuses them.
    const advSeen = new Map<string, string>();
    for (const { m: adv, path: advPath } of advItems) {
      const key = JSON.stringify(Object.entries(adv).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      const first = advSeen.get(key);
      if (first !== undefined) r.fail(advPath, `duplicate bgp-advertisement: the same as ${first}; remove one`);
      else advSeen.set(key, advPath);
    }
    for (const { m: adv, path: advPath } of entries) {
      const advBefore = r.errorCount;
      r.onlyKnown(adv, advPath, advertisementTuningKeys('kebab'));
      const tuning = readAdvertisementTuning(r, adv, advPath, 'kebab');
      bgpIndex++;
      out.bgpAdvertisements.push({
        value: {
          name: `bgpadvertisement${bgpIndex}`,
          origin: origin(advPath),
          aggregationLength: tuning.aggregationLength,
          aggregationLengthV6: tuning.aggregationLengthV6,
          ...(tuning.localPref !== undefined ? { localPref: tuning.localPref } : {}),
          communities: [],
          ipAddressPools: [name],
          ipAddressPoolSelectors: [],
          nodeSelectors: [],
          peers: [],
        },
        source,
        path: advPath,
        namePath: advPath,
        // An advertisement of a pool that is left out of Config goes with it.
        ok: poolOk && r.errorCount === advBefore,
        poolRefs,
        communityRefs: tuning.communityRefs,
        aggregationLengthPath: tuning.aggregationLengthPath,
        aggregationLengthV6Path: tuning.aggregationLengthV6Path,
        localPrefPath: tuning.localPrefPath,
      });
    }
  });
  return out;
}

/**
 * The maps of a list field, with their paths; entries that are not maps are reported. An empty
 * entry is an error unless `emptyEntry` says what it stands for.
 */
function listOf(r: Reader, m: Fields, key: string, base = '', options: { emptyEntry?: Fields } = {}): { m: Fields; path: string }[] {
  const path = at(base, key);
  const out: { m: Fields; path: string }[] = [];
  (r.list(m, key, base) ?? []).forEach((item, i) => {
    const empty = item === null || item === undefined;
    if (empty && options.emptyEntry) {
      out.push({ m: options.emptyEntry, path: at(path, i) });
      return;
    }
    const f = r.fields(item, at(path, i));
    if (f) out.push({ m: f, path: at(path, i) });
    else if (empty) r.fail(at(path, i), 'must be a map, got nothing');
  });
  return out;
}

type Loaded = { value: unknown; scalarText: Map<string, string> } | { error: string };

/** Parse YAML without throwing; a syntax error becomes one message with its line and column. */
function loadYAML(text: string): Loaded {
  let doc: Document.Parsed;
  const lines = new LineCounter();
  try {
    doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  } catch (e) {
    return { error: `invalid YAML: ${e instanceof Error ? e.message : String(e)}` };
  }
  const first = doc.errors[0];
  if (first) {
    const pos = lines.linePos(first.pos[0]);
    const where = ` at line ${pos.line}, column ${pos.col}`;
    const what =
      first.code === 'MULTIPLE_DOCS' ? 'the configuration must be a single YAML document (remove the "---" separators)' : (first.message.split('\n')[0] ?? first.message);
    return { error: `invalid YAML${where}: ${what}` };
  }
  try {
    const value: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    const scalarText = new Map<string, string>();
    collectScalarText(doc.contents, '', scalarText, 0);
    return { value, scalarText };
  } catch (e) {
    return { error: `invalid YAML: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** Record the written text of numbers and booleans, by path, for string fields (see Reader). */
function collectScalarText(node: unknown, path: string, out: Map<string, string>, depth: number): void {
  if (depth > MAX_DEPTH) return;
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      collectScalarText(pair.value, at(path, String(pair.key.value)), out, depth + 1);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => collectScalarText(item, at(path, i), out, depth + 1));
  } else if (isScalar(node) && typeof node.value !== 'string' && node.value !== null && node.source !== undefined) {
    out.set(path, node.source);
  }
}
