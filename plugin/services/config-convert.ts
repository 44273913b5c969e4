/**
 * `kubectl metallb config convert`: the legacy ConfigMap as the metallb.io objects that mean the
 * same, as MetalLB's configmaptocrs tool converts it. The one parser reads the ConfigMap into a
 * Config (which already names the objects configmaptocrs's way: l2advertisementN, peerN, ...);
 * this writes that Config back out as objects, so that parsing the output yields the same Config.
 */
import { parseAllDocuments } from 'yaml';
import { formatCommunity, formatConfigError, parseConfig, type Config, type LabelSelector } from '../../core/config/index.js';
import { formatIP } from '../../core/ip/index.js';
import { CONFIG_MAP_NAME, DEFAULT_NAMESPACE } from '../../kube/names.js';

/** The outcome: the objects, or the errors of the ConfigMap (one line each). */
export type Conversion = { ok: true; objects: Record<string, unknown>[]; warnings: string[] } | { ok: false; errors: string[] };

type Fields = Record<string, unknown>;
const isMap = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Convert the ConfigMap found in `text` (a ConfigMap manifest, possibly among other documents;
 * or the bare `config` text itself) into metallb.io objects in `namespace`.
 */
export function convertConfigMap(text: string, namespace = DEFAULT_NAMESPACE): Conversion {
  let configText: string | undefined;
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [];
  for (const d of list) {
    if (d.errors.length > 0) return { ok: false, errors: [`invalid YAML: ${d.errors[0]?.message.split('\n')[0] ?? ''}`] };
    const o: unknown = d.toJS();
    if (isMap(o) && o.kind === 'ConfigMap' && isMap(o.data) && typeof o.data.config === 'string') {
      configText = o.data.config;
      break;
    }
  }
  // No manifest: the text may be the configuration itself (address-pools:, peers:).
  if (configText === undefined && list.length === 1 && isMap(list[0]?.toJS()) && !('kind' in (list[0]?.toJS() as Fields))) configText = text;
  if (configText === undefined) return { ok: false, errors: ['no ConfigMap with a key "config" found (give the ConfigMap manifest, or its config text)'] };

  const result = parseConfig({ configMap: { namespace, name: CONFIG_MAP_NAME, text: configText }, resources: [], namespace });
  if (result.errors.length > 0) return { ok: false, errors: result.errors.map(formatConfigError) };
  return { ok: true, objects: configObjects(result.config, namespace), warnings: result.warnings.map(formatConfigError) };
}

function selector(s: LabelSelector): Fields {
  return {
    ...(Object.keys(s.matchLabels).length > 0 ? { matchLabels: s.matchLabels } : {}),
    ...(s.matchExpressions.length > 0
      ? { matchExpressions: s.matchExpressions.map((e) => ({ key: e.key, operator: e.operator, ...(e.values.length > 0 ? { values: e.values } : {}) })) }
      : {}),
  };
}

const object = (kind: string, name: string, namespace: string, spec: Fields, version = 'v1beta1'): Record<string, unknown> => ({
  apiVersion: `metallb.io/${version}`,
  kind,
  metadata: { name, namespace },
  spec,
});

/** A Config as metallb.io objects: pools, BFD profiles, community aliases, peers, advertisements. */
export function configObjects(config: Config, namespace: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const p of config.pools) {
    out.push(
      object('IPAddressPool', p.name, namespace, {
        addresses: p.ranges.map((r) => r.text),
        ...(!p.autoAssign ? { autoAssign: false } : {}),
        ...(p.avoidBuggyIPs ? { avoidBuggyIPs: true } : {}),
      }),
    );
  }
  for (const b of config.bfdProfiles) {
    out.push(
      object('BFDProfile', b.name, namespace, {
        receiveInterval: b.receiveInterval,
        transmitInterval: b.transmitInterval,
        detectMultiplier: b.detectMultiplier,
        echoInterval: b.echoInterval,
        echoMode: b.echoMode,
        passiveMode: b.passiveMode,
        minimumTtl: b.minimumTtl,
      }),
    );
  }
  const aliases = Object.entries(config.communities);
  if (aliases.length > 0) {
    out.push(object('Community', 'communities', namespace, { communities: aliases.map(([name, c]) => ({ name, value: formatCommunity(c) })) }));
  }
  for (const p of config.peers) {
    out.push(
      object(
        'BGPPeer',
        p.name,
        namespace,
        {
          myASN: p.myASN,
          peerASN: p.peerASN,
          peerAddress: formatIP(p.peerAddress),
          ...(p.peerPort !== 179 ? { peerPort: p.peerPort } : {}),
          ...(p.sourceAddress ? { sourceAddress: formatIP(p.sourceAddress) } : {}),
          holdTime: `${p.holdTime}s`,
          keepaliveTime: `${p.keepaliveTime}s`,
          ...(p.routerID ? { routerID: formatIP(p.routerID) } : {}),
          ...(p.nodeSelectors.length > 0 ? { nodeSelectors: p.nodeSelectors.map(selector) } : {}),
          ...(p.password ? { password: p.password } : {}),
          ...(p.bfdProfile ? { bfdProfile: p.bfdProfile } : {}),
          ...(p.ebgpMultiHop ? { ebgpMultiHop: true } : {}),
        },
        'v1beta2',
      ),
    );
  }
  for (const a of config.l2Advertisements) {
    out.push(
      object('L2Advertisement', a.name, namespace, {
        ...(a.ipAddressPools.length > 0 ? { ipAddressPools: a.ipAddressPools } : {}),
        ...(a.ipAddressPoolSelectors.length > 0 ? { ipAddressPoolSelectors: a.ipAddressPoolSelectors.map(selector) } : {}),
        ...(a.nodeSelectors.length > 0 ? { nodeSelectors: a.nodeSelectors.map(selector) } : {}),
        ...(a.interfaces.length > 0 ? { interfaces: a.interfaces } : {}),
      }),
    );
  }
  for (const a of config.bgpAdvertisements) {
    out.push(
      object('BGPAdvertisement', a.name, namespace, {
        ...(a.aggregationLength !== 32 ? { aggregationLength: a.aggregationLength } : {}),
        ...(a.aggregationLengthV6 !== 128 ? { aggregationLengthV6: a.aggregationLengthV6 } : {}),
        ...(a.localPref !== undefined ? { localPref: a.localPref } : {}),
        ...(a.communities.length > 0 ? { communities: a.communities.map(formatCommunity) } : {}),
        ...(a.ipAddressPools.length > 0 ? { ipAddressPools: a.ipAddressPools } : {}),
        ...(a.ipAddressPoolSelectors.length > 0 ? { ipAddressPoolSelectors: a.ipAddressPoolSelectors.map(selector) } : {}),
        ...(a.nodeSelectors.length > 0 ? { nodeSelectors: a.nodeSelectors.map(selector) } : {}),
        ...(a.peers.length > 0 ? { peers: a.peers } : {}),
      }),
    );
  }
  return out;
}
